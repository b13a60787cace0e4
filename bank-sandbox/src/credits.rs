//! Credits a group commit applies at the end of its batch, one statement per account.
//!
//! Why: in the load (and at a real bank: a merchant) most payments credit the same few
//! accounts. Credited in each job, that row was changed up to 64 times per PostgreSQL batch
//! and its lock held from the batch's first credit to its commit, so the other worker's
//! batch waited for it. A credit that waited for the row lock takes a tuple lock first,
//! and PostgreSQL then keeps that subtransaction on the new row version as a key-share
//! locker; every later change of the row by another job (subtransaction) of the batch made
//! a MultiXact, and every reader of the row resolved it. Summed and applied at the end,
//! the row changes once per batch and is locked from then to the commit only.
//!
//! Within a batch a debit therefore sees the balance without the batch's credits, as if it
//! came before them: the batch's jobs are concurrent requests, none answered before the
//! commit, so that order is one they could have had.

/// Credits of the running job and of the batch's finished jobs.
#[derive(Debug, Default)]
pub(crate) struct Credits {
    /// The running job's, kept only if it succeeds (its writes are rolled back otherwise).
    job: Vec<Credit>,
    /// The batch's: one entry per (account, currency) unless a sum would overflow.
    batch: Vec<Credit>,
}

/// `amount` minor units to `account` if it is an account of this bank in `currency`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Credit {
    pub account: String,
    pub currency: String,
    pub amount: i64,
}

impl Credits {
    /// Adds a credit of the running job.
    pub fn add(&mut self, credit: Credit) {
        self.job.push(credit);
    }

    /// The running job finished: its credits join the batch's if it succeeded.
    pub fn job_done(&mut self, succeeded: bool) {
        if !succeeded {
            self.job.clear();
            return;
        }
        for credit in self.job.drain(..) {
            let same = self
                .batch
                .iter_mut()
                .rev()
                .find(|c| c.account == credit.account && c.currency == credit.currency);
            match same.and_then(|c| c.amount.checked_add(credit.amount).map(|sum| (c, sum))) {
                Some((c, sum)) => c.amount = sum,
                // A sum past i64 stays two credits (the balance itself would overflow, and
                // the statement refuses it).
                None => self.batch.push(credit),
            }
        }
    }

    /// The batch's credits, in account order (two workers lock the rows in the same
    /// order, so they cannot deadlock on them); none are left.
    pub fn take_batch(&mut self) -> Vec<Credit> {
        self.job.clear();
        let mut batch = std::mem::take(&mut self.batch);
        batch.sort();
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credit(account: &str, amount: i64) -> Credit {
        Credit {
            account: account.into(),
            currency: "EUR".into(),
            amount,
        }
    }

    #[test]
    fn a_failed_jobs_credits_are_dropped_and_the_rest_summed_per_account() {
        let mut credits = Credits::default();
        credits.add(credit("B", 5));
        credits.job_done(true);
        credits.add(credit("B", 7));
        credits.add(credit("A", 1));
        credits.job_done(false);
        credits.add(credit("B", 2));
        credits.add(credit("A", 3));
        credits.job_done(true);
        assert_eq!(credits.take_batch(), vec![credit("A", 3), credit("B", 7)]);
        assert!(credits.take_batch().is_empty());
    }

    #[test]
    fn sums_past_i64_stay_separate() {
        let mut credits = Credits::default();
        credits.add(credit("A", i64::MAX));
        credits.add(credit("A", 1));
        credits.job_done(true);
        assert_eq!(
            credits.take_batch(),
            vec![credit("A", 1), credit("A", i64::MAX)]
        );
    }
}
