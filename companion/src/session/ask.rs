//! Typed requests: [`Session::ask`] sends a [`Command`] and returns the response it names
//! (PROTOCOL.md §3.3). An `Error` answer is [`SessionError::Refused`] as for any request; any
//! other answer is [`SessionError::UnexpectedAnswer`], made here and nowhere else in the
//! companion, so a flow never matches on `Response` variants.

use firmware_protocol::message::{Command, MessageError, Request, Response};

use super::{Progress, Session, SessionError};

impl Session {
    /// Sends `request` and returns the answer its [`Command`] names.
    pub async fn ask<C: Command>(&mut self, request: C) -> Result<C::Response, SessionError> {
        self.ask_with_progress(request, &mut |_| {}).await
    }

    /// As [`Session::ask`], reporting progress as [`Session::request_with_progress`] does.
    pub async fn ask_with_progress<C: Command>(
        &mut self,
        request: C,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<C::Response, SessionError> {
        let request: Request = request.into();
        let answer = self.request_with_progress(&request, on_progress).await?;
        expect::<C>(answer)
    }

    /// As [`Session::ask_with_progress`] for a command whose bytes depend on the request id
    /// (the `HostVerified` envelope around it, signed afresh for each attempt): `build` gives
    /// the bytes for an id, the answer is still the one `C` names.
    pub async fn ask_built<C: Command>(
        &mut self,
        build: &mut (dyn FnMut(u32) -> Result<Vec<u8>, MessageError> + Send),
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<C::Response, SessionError> {
        let answer = self
            .request_built_with_progress(C::NAME, build, on_progress)
            .await?;
        expect::<C>(answer)
    }
}

/// The one place a wrong answer becomes a session error.
fn expect<C: Command>(answer: Response) -> Result<C::Response, SessionError> {
    C::expect(answer).map_err(SessionError::UnexpectedAnswer)
}

#[cfg(test)]
mod tests {
    use firmware_protocol::message::{GetInfo, Pong, UnexpectedAnswer};

    use super::*;

    #[test]
    fn a_wrong_answer_is_one_typed_session_error_naming_both_types() {
        let error = expect::<GetInfo>(Response::Pong(Pong { payload: vec![] })).unwrap_err();
        assert!(matches!(
            error,
            SessionError::UnexpectedAnswer(UnexpectedAnswer {
                request: "GetInfo",
                expected: "Info",
                got: "Pong",
                ..
            })
        ));
        assert_eq!(error.kind(), crate::error::ErrorKind::CorruptFrame);
        assert_eq!(
            error.to_string(),
            "the PIN pad answered GetInfo with Pong (type 0x8003), not Info"
        );
    }
}
