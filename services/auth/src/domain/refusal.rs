//! The explicit noes: why a known gateway gets no token, or an operator no access, for
//! reasons of the org's standing rather than of the request.

use crate::domain::OrgStatus;

/// Why the token endpoint says no to a known gateway (an explicit answer, HTTP 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The org's license was revoked.
    LicenseRevoked,
    /// The org's license ended.
    LicenseExpired,
    /// The org is suspended.
    OrgSuspended,
    /// The org's trial ended.
    TrialExpired,
    /// The org has no license (or none valid yet).
    NoLicense,
}

impl Refusal {
    /// The contract's error code.
    pub(crate) const fn code(self) -> &'static str {
        match self {
            Refusal::LicenseRevoked => "license_revoked",
            Refusal::LicenseExpired => "license_expired",
            Refusal::OrgSuspended => "org_suspended",
            Refusal::TrialExpired => "trial_expired",
            Refusal::NoLicense => "no_license",
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::LicenseRevoked => "the organization's license was revoked",
            Refusal::LicenseExpired => "the organization's license has expired",
            Refusal::OrgSuspended => "the organization is suspended",
            Refusal::TrialExpired => "the organization's trial has ended",
            Refusal::NoLicense => "the organization has no valid license",
        }
    }
}

/// The one rule on an org's standing, for the token path and the management API alike:
/// a suspended org is refused, and so is a trial org at or after its end. A trial without
/// an end date counts as ended: every write requires one, so a row without it was not
/// written by this service and grants nothing.
pub(crate) fn org_standing(
    status: OrgStatus,
    trial_expires_at: Option<i64>,
    now: i64,
) -> Result<(), Refusal> {
    match status {
        OrgStatus::Active => Ok(()),
        OrgStatus::Suspended => Err(Refusal::OrgSuspended),
        OrgStatus::Trial if trial_expires_at.is_some_and(|end| now < end) => Ok(()),
        OrgStatus::Trial => Err(Refusal::TrialExpired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_stands_while_active_or_before_its_trial_ends() {
        assert_eq!(org_standing(OrgStatus::Active, None, 100), Ok(()));
        assert_eq!(org_standing(OrgStatus::Active, Some(50), 100), Ok(()));
        assert_eq!(org_standing(OrgStatus::Trial, Some(101), 100), Ok(()));
        assert_eq!(
            org_standing(OrgStatus::Trial, Some(100), 100),
            Err(Refusal::TrialExpired),
            "the trial ends at its end instant"
        );
        assert_eq!(
            org_standing(OrgStatus::Trial, None, 100),
            Err(Refusal::TrialExpired),
            "a trial without an end date is over"
        );
        assert_eq!(
            org_standing(OrgStatus::Suspended, Some(1_000), 100),
            Err(Refusal::OrgSuspended)
        );
    }
}
