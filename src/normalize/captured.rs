//! The proxy's held-body decision over a body already in memory: `errgate normalize`,
//! `errgate catalog suggest`, the catalog tests, the normalize unit tests and the benchmark all
//! call [`decide_captured`], which runs exactly the steps the proxy runs chunk by chunk
//! (`src/proxy/body.rs`): [`must_hold`], [`Hold::new`] with the default scan limits,
//! [`Hold::first_step`], [`Hold::feed`] until the step is not `More`, [`Hold::end`] at the end
//! of the body, then [`Hold::classified`] unless the response was released.

use super::{must_hold, Classified, Hold, HoldStep, ResponseFacts, ScanFacts, Verdict};
use crate::catalog::VendorCatalog;
use crate::problem::Problem;
use crate::scan::ScanLimits;
use std::time::{Duration, SystemTime};

/// What the proxy does with a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// [`must_hold`] says no: it streams through unread.
    NotHeld,
    /// Held, then released untouched. `fallback` says why it was not classified
    /// (`hold_limit`, `undecodable`); `None` when the in-band field said success.
    Released {
        /// [`Hold::fallback`].
        fallback: Option<&'static str>,
    },
    /// Read to the end (or, for a known error, to the hold limit) and classified.
    Classified {
        /// The verdict and the hints not believed.
        classified: Classified,
        /// What the scanner pulled out.
        facts: ScanFacts,
    },
}

// === impl Decision ===

impl Decision {
    /// The problem errgate answers with, or `None` when the response passes through.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Decision::Classified {
                classified:
                    Classified {
                        verdict: Verdict::Error(p, _),
                        ..
                    },
                ..
            } => Some(p),
            _ => None,
        }
    }

    /// The verdict: [`Verdict::Pass`] unless the response was classified as an error.
    pub fn into_verdict(self) -> Verdict {
        match self {
            Decision::Classified { classified, .. } => classified.verdict,
            _ => Verdict::Pass,
        }
    }
}

/// Decides `resp` with the body given as `chunks`, as the proxy does when the body arrives in
/// those chunks (see the module doc). A response errgate did not receive itself (a captured
/// body, a fixture, a benchmark input) may give its method in any case and its path with a
/// query: both are normalised as the proxy's are.
pub fn decide_captured<'c>(
    vendor: &VendorCatalog,
    resp: &ResponseFacts<'_>,
    chunks: impl IntoIterator<Item = &'c [u8]>,
    hold_max: usize,
    now: SystemTime,
    retry_after_max: Duration,
) -> Decision {
    let head_only = resp.method.eq_ignore_ascii_case("HEAD");
    if !must_hold(vendor, resp.status, resp.headers, head_only) {
        return Decision::NotHeld;
    }
    let encoding = resp
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let mut hold = Hold::new(
        vendor,
        resp.status,
        encoding,
        hold_max,
        ScanLimits::default(),
    );
    let mut step = hold.first_step();
    for chunk in chunks {
        if step != HoldStep::More {
            break;
        }
        step = hold.feed(chunk);
    }
    match step {
        HoldStep::Release => {
            return Decision::Released {
                fallback: hold.fallback(),
            }
        }
        HoldStep::More => hold.end(),
        HoldStep::Decide => {}
    }
    let method = resp.method.to_ascii_uppercase();
    let path = resp.path.split('?').next().unwrap_or("/");
    let (classified, facts) = hold.classified(&method, path, resp.headers, now, retry_after_max);
    Decision::Classified { classified, facts }
}
