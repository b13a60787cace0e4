//! Typed commands (the probe-rs shape: one type per wire command, naming its response). Each
//! request body implements [`Command`], whose `Response` is the one success answer PROTOCOL.md
//! §3.3 gives it; any request may instead be refused with `Error` (§3.5). A host that asks
//! with a `Command` gets the expected body or one typed [`UnexpectedAnswer`], so no caller
//! matches on [`Response`] variants and no caller invents its own "wrong answer" error.
//!
//! `HostVerified` is not a command: it answers with whatever its inner request answers.

use super::owner::{ChangePin, DeviceWiped, PinChangeEntered, VerifyPinChange, WipeDevice};
use super::request::{
    ApprovePayment, BankChallenge, BankCommand, Cancel, Enrol, GetInfo, GetIntegrityReport,
    GetStatus, Initialise, LoadSessionKeys, OperatorReset, PairBegin, PairConfirm, Ping,
    SignConfirmation, Unpair, VerifyBankResponse, requires_host_verification,
};
use super::response::{
    CancelResult, ChallengeResponse, ConfirmationSignature, Enrolled, ErrorResponse, IndicatorSet,
    Info, Initialised, IntegrityReport, KeysLoaded, PairChallenge, PairResult, PaymentApproved,
    Pong, Status,
};
use super::{Request, Response};

/// A message body's place in the type table: its code and its name. Implemented for every
/// request and response body by the macro that builds [`Request`] and [`Response`], so the
/// three cannot disagree.
pub trait MessageBody {
    /// The message type code in the header.
    const MESSAGE_TYPE: u16;
    /// The message's name as PROTOCOL.md spells it.
    const NAME: &'static str;
}

/// A request that names the response a device answers it with (PROTOCOL.md §3.3).
pub trait Command: MessageBody + Clone + Into<Request> + TryFrom<Request, Error = Request> {
    /// The success answer.
    type Response: MessageBody + Into<Response> + TryFrom<Response, Error = Response>;

    /// Whether the device accepts this request only inside a `HostVerified` envelope (§3.7).
    const HOST_VERIFIED: bool = requires_host_verification(Self::MESSAGE_TYPE);

    /// The expected answer, or the typed error naming what came instead (an `Error` answer
    /// included: a caller that relays refusals sorts with [`Command::answer`]).
    fn expect(response: Response) -> Result<Self::Response, UnexpectedAnswer> {
        Self::Response::try_from(response).map_err(|other| UnexpectedAnswer::new::<Self>(&other))
    }

    /// Sorts an answer: the expected response, the device's refusal, or anything else.
    fn answer(response: Response) -> Answer<Self::Response> {
        match Self::Response::try_from(response) {
            Ok(done) => Answer::Done(done),
            Err(Response::Error(error)) => Answer::Refused(error),
            Err(other) => Answer::Unexpected(UnexpectedAnswer::new::<Self>(&other)),
        }
    }
}

/// What a device said to a [`Command`], sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    /// The success response the command names.
    Done(T),
    /// The device refused (any request may be, §3.3).
    Refused(ErrorResponse),
    /// Another response: the device broke §3.3.
    Unexpected(UnexpectedAnswer),
}

/// A device answered a request with a response that is neither the request's success answer
/// nor (where the caller sorts refusals apart) an `Error`. Made only by [`Command::expect`] and
/// [`Command::answer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the PIN pad answered {request} with {got} (type 0x{got_type:04x}), not {expected}")]
pub struct UnexpectedAnswer {
    /// The request.
    pub request: &'static str,
    /// The answer §3.3 gives it.
    pub expected: &'static str,
    /// What came (`"Vendor"` for a vendor response).
    pub got: &'static str,
    /// The type code of what came.
    pub got_type: u16,
}

impl UnexpectedAnswer {
    fn new<C: Command>(got: &Response) -> Self {
        UnexpectedAnswer {
            request: C::NAME,
            expected: <C::Response as MessageBody>::NAME,
            got: got.as_str(),
            got_type: got.message_type(),
        }
    }
}

/// One row of the command table: a request and its success answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The request's name.
    pub request: &'static str,
    /// The request's type code.
    pub request_type: u16,
    /// The success answer's name.
    pub response: &'static str,
    /// The success answer's type code.
    pub response_type: u16,
    /// Whether it needs the host-verified envelope.
    pub host_verified: bool,
}

macro_rules! commands {
    ($( $request:ty => $response:ty, )*) => {
        $( impl Command for $request { type Response = $response; } )*

        /// Every command with its answer, in type order: the table of PROTOCOL.md §3.3
        /// without the envelope and the vendor ranges.
        pub const COMMANDS: &[CommandSpec] = &[
            $( CommandSpec {
                request: <$request as MessageBody>::NAME,
                request_type: <$request as MessageBody>::MESSAGE_TYPE,
                response: <$response as MessageBody>::NAME,
                response_type: <$response as MessageBody>::MESSAGE_TYPE,
                host_verified: <$request as Command>::HOST_VERIFIED,
            }, )*
        ];
    };
}

commands! {
    GetInfo => Info,
    GetStatus => Status,
    Ping => Pong,
    Cancel => CancelResult,
    PairBegin => PairChallenge,
    PairConfirm => PairResult,
    Unpair => Status,
    Initialise => Initialised,
    Enrol => Enrolled,
    OperatorReset => Status,
    BankCommand => Status,
    WipeDevice => DeviceWiped,
    GetIntegrityReport => IntegrityReport,
    LoadSessionKeys => KeysLoaded,
    BankChallenge => ChallengeResponse,
    ApprovePayment => PaymentApproved,
    VerifyBankResponse => IndicatorSet,
    SignConfirmation => ConfirmationSignature,
    ChangePin => PinChangeEntered,
    VerifyPinChange => IndicatorSet,
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;
    use crate::message::{BankResult, Indicator, StatusCode, Vendor};

    fn pong() -> Response {
        Response::Pong(Pong { payload: vec![1] })
    }

    #[test]
    fn the_expected_answer_comes_out_typed() {
        assert_eq!(Ping::expect(pong()), Ok(Pong { payload: vec![1] }));
        let set = IndicatorSet {
            indicator: Indicator::Safe,
            result: BankResult::Approved,
            display_text: String::from("Approved"),
        };
        // Two requests share one answer type.
        assert_eq!(
            VerifyPinChange::expect(Response::IndicatorSet(set.clone())),
            Ok(set.clone())
        );
        assert_eq!(
            VerifyBankResponse::answer(Response::IndicatorSet(set.clone())),
            Answer::Done(set)
        );
    }

    #[test]
    fn a_wrong_answer_names_the_request_the_expected_and_the_received_types() {
        let error = GetInfo::expect(pong()).unwrap_err();
        assert_eq!(
            error,
            UnexpectedAnswer {
                request: "GetInfo",
                expected: "Info",
                got: "Pong",
                got_type: 0x8003,
            }
        );
        assert_eq!(
            alloc::string::ToString::to_string(&error),
            "the PIN pad answered GetInfo with Pong (type 0x8003), not Info"
        );
        let vendor = Response::Vendor(Vendor {
            message_type: 0xF00D,
            body: Vec::new(),
        });
        assert_eq!(
            BankCommand::answer(vendor),
            Answer::Unexpected(UnexpectedAnswer {
                request: "BankCommand",
                expected: "Status",
                got: "Vendor",
                got_type: 0xF00D,
            })
        );
    }

    #[test]
    fn an_error_is_a_refusal_when_sorted_and_unexpected_when_expected() {
        let error = ErrorResponse {
            status: StatusCode::Tampered,
            indicator: Indicator::Danger,
            detail: String::new(),
        };
        assert_eq!(
            Initialise::answer(Response::Error(error.clone())),
            Answer::Refused(error.clone())
        );
        assert_eq!(
            Initialise::expect(Response::Error(error)).unwrap_err().got,
            "Error"
        );
    }

    #[test]
    fn the_table_is_protocol_md_section_3_3() {
        let spec = include_str!("../../PROTOCOL.md");
        let section = spec
            .split("### 3.3 Message types")
            .nth(1)
            .and_then(|rest| rest.split("### 3.4").next())
            .expect("PROTOCOL.md has §3.3");
        let mut rows = Vec::new();
        for line in section.lines().filter(|line| line.starts_with("| `0x")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (request, answer, verified) = (cells[2], cells[3], cells[4]);
            if request == "HostVerified" || request == "vendor" {
                continue;
            }
            let request_type = u16::from_str_radix(&cells[1][3..7], 16).expect("a type code");
            let (answer_code, answer_name) = answer.split_once(' ').expect("`code` Name");
            let response_type =
                u16::from_str_radix(&answer_code[3..7], 16).expect("an answer code");
            rows.push(CommandSpec {
                request: COMMANDS
                    .iter()
                    .find(|c| c.request == request)
                    .map_or("missing from COMMANDS", |c| c.request),
                request_type,
                response: COMMANDS
                    .iter()
                    .find(|c| c.response == answer_name)
                    .map_or("missing from COMMANDS", |c| c.response),
                response_type,
                host_verified: verified.contains("yes"),
            });
        }
        assert_eq!(rows, COMMANDS);
        for command in COMMANDS {
            assert_eq!(
                Request::type_name(command.request_type),
                Some(command.request)
            );
            assert_eq!(
                Response::type_name(command.response_type),
                Some(command.response)
            );
        }
    }
}
