//! The equal-time rule across password-hash formats: a failed login does the same work
//! whether the name exists or not, and whatever format its stored hash is in.
//!
//! With one format that is simple: an unknown name is checked against a dummy hash of that
//! format. But users imported from a Flask app ([`crate::flask::hashes`]) keep their
//! Werkzeug scrypt or pbkdf2, bcrypt or argon2 hashes until their first login, and each of
//! those costs something else than countersign's argon2id (bcrypt at cost 12 about five
//! times as much). A dummy argon2id check for an unknown name would tell them apart from
//! the names that do not exist.
//!
//! # The rule
//! A [`CostClass`] is a format with the parameters that set its work (bcrypt's cost,
//! scrypt's `N`, `r`, `p`, argon2's memory, passes and lanes…), never the salt or the hash.
//! The hashing pool keeps the classes present in the user store, countersign's own argon2id
//! always among them. A password check that **fails** runs one check of each class, with
//! the submitted password: the user's own hash for the user's class, a dummy hash of the
//! class (a fixed salt and a hash no password gives) for every other. An unknown name, a
//! disabled account, or a stored hash that cannot be checked runs every class against its
//! dummy. So every failure is the same sequence of key derivations, with the same
//! parameters; only salts and expected bytes differ, and they do not change the work.
//!
//! A check that **succeeds** stops after the user's own hash: a right password costs what
//! it did before (one argon2id for a countersign user), and its timing tells nothing that
//! the answer does not say already.
//!
//! Werkzeug pbkdf2 with one digest is one family whatever the iteration count: its work is
//! linear in the iterations, so a hash of `i` iterations is padded with one dummy of
//! `top − i`, `top` being the largest count present, and the family costs `top` iterations
//! (plus the microsecond of one more call) for everyone. Every other class is a family of
//! its own: bcrypt's, scrypt's and argon2's work does not split into equal parts.
//!
//! # What it costs
//! Once every imported user has logged in, the only class left is countersign's argon2id,
//! and a failure costs one argon2id check, as it always did. While imported hashes remain,
//! a failure costs the sum of one check per class present (argon2id plus bcrypt at cost 12,
//! say), a success only its own.
//!
//! # Which classes are present
//! [`Auth::survey_password_hashes`] reads the store's hashes other than countersign's own
//! argon2id, a page at a time, and sets the classes: the server does it before it listens
//! and then every ten minutes ([`Auth::keep_surveying_password_hashes`]), so classes whose
//! last user has logged in drop out. A class the last survey did not see (users imported
//! while the server runs) joins at the first check of one of its hashes. Classes beyond the
//! import caps are never added: an argon2 hash above them (only a hand-edited row can be)
//! is checked at its own login, but is not made the price of every failure.
//!
//! [`Auth::survey_password_hashes`]: crate::auth::Auth::survey_password_hashes
//! [`Auth::keep_surveying_password_hashes`]: crate::auth::Auth::keep_surveying_password_hashes

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;

use crate::flask::hashes::{self, Digest, LegacyHash};
use crate::password_hash::{HashParams, PasswordHash};
use crate::store::{StoreError, UserStore};
use crate::user::UserId;

/// Stored hashes read per page by a survey.
pub const SURVEY_PAGE: u32 = 1000;

/// How often the server surveys the stored hashes again.
pub const SURVEY_EVERY: Duration = Duration::from_secs(10 * 60);

/// A password-hash format with the parameters that set the work of checking it (never its
/// salt or hash): every failed password check does one check of each class present (see
/// the module docs). Shown as, e.g., `bcrypt cost 12` or `argon2id m=19456 t=2 p=1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CostClass(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Argon2 {
        variant: Argon2Variant,
        version: u32,
        m_kib: u32,
        t: u32,
        p: u32,
        output_len: usize,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
    },
    Pbkdf2 {
        digest: Digest,
        iterations: u32,
    },
    Bcrypt {
        cost: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Argon2Variant {
    D,
    I,
    Id,
}

impl Argon2Variant {
    fn name(self) -> &'static str {
        match self {
            Self::D => "argon2d",
            Self::I => "argon2i",
            Self::Id => "argon2id",
        }
    }
}

/// A fixed salt for dummy hashes: salts do not change the work.
const DUMMY_SALT: [u8; 16] = *b"countersign:pad!";
/// The same, as a Werkzeug salt (Werkzeug makes 16 letters and digits).
const DUMMY_WERKZEUG_SALT: &str = "countersignpad16";

impl CostClass {
    /// The class of a stored hash; `None` for a hash that cannot be checked (an unknown
    /// format, a legacy hash over the import caps, a malformed string).
    pub fn of(hash: &PasswordHash) -> Option<Self> {
        let s = hash.as_str();
        if s.starts_with("$argon2") {
            return Self::of_argon2(s);
        }
        let kind = match LegacyHash::recognise(s)?.ok()? {
            LegacyHash::Scrypt { log_n, r, p, .. } => Kind::Scrypt { log_n, r, p },
            LegacyHash::Pbkdf2 {
                digest, iterations, ..
            } => Kind::Pbkdf2 { digest, iterations },
            // `$2b$12$…`: two digits, checked by the parser.
            LegacyHash::Bcrypt(h) => Kind::Bcrypt {
                cost: h.get(4..6)?.parse().ok()?,
            },
        };
        Some(Self(kind))
    }

    fn of_argon2(s: &str) -> Option<Self> {
        let parsed = argon2::PasswordHash::new(s).ok()?;
        let variant = match parsed.algorithm.as_str() {
            "argon2id" => Argon2Variant::Id,
            "argon2i" => Argon2Variant::I,
            "argon2d" => Argon2Variant::D,
            _ => return None,
        };
        let params = argon2::Params::try_from(&parsed).ok()?;
        Some(Self(Kind::Argon2 {
            variant,
            // What the argon2 crate assumes when the string names none.
            version: parsed.version.unwrap_or(argon2::Version::V0x13 as u32),
            m_kib: params.m_cost(),
            t: params.t_cost(),
            p: params.p_cost(),
            output_len: parsed.hash?.len(),
        }))
    }

    /// countersign's own argon2id with these parameters (as [`crate::password::Hasher`]
    /// makes it: version 19, 32 bytes).
    pub fn argon2id(params: HashParams) -> Self {
        Self(Kind::Argon2 {
            variant: Argon2Variant::Id,
            version: argon2::Version::V0x13 as u32,
            m_kib: params.m_cost_kib,
            t: params.t_cost,
            p: params.p_cost,
            output_len: argon2::Params::DEFAULT_OUTPUT_LEN,
        })
    }

    /// The classes whose work adds up to this one's: pbkdf2 with one digest, whatever the
    /// iterations; every other class alone.
    fn family(self) -> Kind {
        match self.0 {
            Kind::Pbkdf2 { digest, .. } => Kind::Pbkdf2 {
                digest,
                iterations: 0,
            },
            kind => kind,
        }
    }

    /// Whether a failed check may be made to pay for this class: countersign's own, or
    /// within the import caps. (Legacy classes are within them by construction.)
    fn admissible(self, native: Self) -> bool {
        match self.0 {
            Kind::Argon2 { m_kib, t, p, .. } if self != native => {
                m_kib <= hashes::MAX_ARGON2_M_KIB
                    && t <= hashes::MAX_ARGON2_T
                    && p <= hashes::MAX_ARGON2_P
                    && u64::from(m_kib) * u64::from(t) <= hashes::MAX_ARGON2_WORK
            }
            _ => true,
        }
    }

    /// A hash of this class that no password matches in practice (a fixed salt, an
    /// expected value of zeros), for the padding checks. Checking it does exactly the
    /// work of checking a real hash of the class.
    fn dummy(self) -> PasswordHash {
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let s = match self.0 {
            Kind::Argon2 {
                variant,
                version,
                m_kib,
                t,
                p,
                output_len,
            } => format!(
                "${}$v={version}$m={m_kib},t={t},p={p}${}${}",
                variant.name(),
                b64.encode(DUMMY_SALT),
                b64.encode(vec![0u8; output_len]),
            ),
            Kind::Scrypt { log_n, r, p } => format!(
                "scrypt:{}:{r}:{p}${DUMMY_WERKZEUG_SALT}${}",
                1u64 << log_n,
                "0".repeat(128)
            ),
            Kind::Pbkdf2 { digest, iterations } => {
                let (name, hex_len) = match digest {
                    Digest::Sha256 => ("sha256", 64),
                    Digest::Sha512 => ("sha512", 128),
                };
                format!(
                    "pbkdf2:{name}:{iterations}${DUMMY_WERKZEUG_SALT}${}",
                    "0".repeat(hex_len)
                )
            }
            // Canonical bcrypt base64, or the crate refuses it before doing the work.
            Kind::Bcrypt { cost } => {
                let bcrypt_b64 = base64::engine::GeneralPurpose::new(
                    &base64::alphabet::BCRYPT,
                    base64::engine::general_purpose::NO_PAD,
                );
                format!(
                    "$2b${cost:02}${}{}",
                    bcrypt_b64.encode(DUMMY_SALT),
                    bcrypt_b64.encode([0u8; 23]),
                )
            }
        };
        PasswordHash::from_phc(s)
    }
}

impl fmt::Display for CostClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Kind::Argon2 {
                variant,
                version,
                m_kib,
                t,
                p,
                output_len,
            } => {
                write!(f, "{} m={m_kib} t={t} p={p}", variant.name())?;
                if version != argon2::Version::V0x13 as u32 {
                    write!(f, " v={version}")?;
                }
                if output_len != argon2::Params::DEFAULT_OUTPUT_LEN {
                    write!(f, " {output_len}-byte hash")?;
                }
                Ok(())
            }
            Kind::Scrypt { log_n, r, p } => {
                write!(f, "werkzeug-scrypt N={} r={r} p={p}", 1u64 << log_n)
            }
            Kind::Pbkdf2 { digest, iterations } => {
                let name = match digest {
                    Digest::Sha256 => "sha256",
                    Digest::Sha512 => "sha512",
                };
                write!(f, "werkzeug-pbkdf2 {name} {iterations} iterations")
            }
            Kind::Bcrypt { cost } => write!(f, "bcrypt cost {cost}"),
        }
    }
}

/// What every failed check does: one check per family present, at the family's top class,
/// each with its dummy hash. Replaced as a whole (by a survey, or when a check meets a
/// class it does not cover), never changed in place.
#[derive(Debug)]
pub(crate) struct Budget {
    native: CostClass,
    /// By family, countersign's own among them.
    tops: Vec<(CostClass, PasswordHash)>,
}

impl Budget {
    /// countersign's own class and the admissible classes of `present`.
    pub(crate) fn new(native: CostClass, present: impl IntoIterator<Item = CostClass>) -> Self {
        let mut tops: BTreeMap<Kind, CostClass> = BTreeMap::new();
        for class in std::iter::once(native).chain(present) {
            if !class.admissible(native) {
                continue;
            }
            let top = tops.entry(class.family()).or_insert(class);
            // Within a family only the iterations differ: the larger one is the top.
            *top = (*top).max(class);
        }
        Self {
            native,
            tops: tops
                .into_values()
                .map(|class| (class, class.dummy()))
                .collect(),
        }
    }

    /// countersign's own class.
    pub(crate) fn native(&self) -> CostClass {
        self.native
    }

    /// The top class of each family, in a fixed order.
    pub(crate) fn classes(&self) -> impl Iterator<Item = CostClass> + '_ {
        self.tops.iter().map(|(class, _)| *class)
    }

    /// Whether a check of `class` is padded to the same work as the others: its family is
    /// here, with a top at least as costly.
    pub(crate) fn covers(&self, class: CostClass) -> bool {
        self.classes()
            .any(|top| top.family() == class.family() && top >= class)
    }

    /// Whether `class` should join: not covered, and admissible.
    pub(crate) fn lacks(&self, class: CostClass) -> bool {
        !self.covers(class) && class.admissible(self.native)
    }

    /// This budget with `class` added.
    pub(crate) fn with(&self, class: CostClass) -> Self {
        Self::new(
            self.native,
            self.classes()
                .chain(std::iter::once(class))
                .collect::<Vec<_>>(),
        )
    }

    /// The dummy checks that complete a failed check whose own check did the work of
    /// `ran` (`None`: no check of a stored hash ran). With them, every failure does the
    /// work of each top class exactly once.
    pub(crate) fn pads(&self, ran: Option<CostClass>) -> Vec<(CostClass, PasswordHash)> {
        let mut pads = Vec::with_capacity(self.tops.len());
        for (top, dummy) in &self.tops {
            match ran {
                Some(own) if own.family() == top.family() => {
                    if let (
                        Kind::Pbkdf2 { digest, iterations },
                        Kind::Pbkdf2 {
                            iterations: done, ..
                        },
                    ) = (top.0, own.0)
                        && done < iterations
                    {
                        let rest = CostClass(Kind::Pbkdf2 {
                            digest,
                            iterations: iterations - done,
                        });
                        pads.push((rest, rest.dummy()));
                    }
                }
                _ => pads.push((*top, dummy.clone())),
            }
        }
        pads
    }
}

/// What a survey of the stored password hashes found
/// ([`Auth::survey_password_hashes`](crate::auth::Auth::survey_password_hashes)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Survey {
    /// The classes every failed check now does one check of, countersign's own among them.
    pub budget: Vec<CostClass>,
    /// How many users have hashes of each class, countersign's own current argon2id left
    /// out (it is not read).
    pub users_by_class: Vec<(CostClass, u64)>,
    /// Stored hashes that cannot be checked (an unknown format, a legacy hash over the
    /// caps): they never match, and their users' failed logins cost what an unknown
    /// name's do.
    pub unchecked: u64,
    /// argon2 hashes over the import caps (only a hand-edited row can be): checked at
    /// their users' logins, but left out of the budget, so their failures do not cost
    /// what the others' do.
    pub over_caps: u64,
}

/// The start of every hash countersign makes with `params`: hashes that start with it are
/// of the native class and need not be read by a survey.
pub(crate) fn native_prefix(params: HashParams) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}$",
        params.m_cost_kib, params.t_cost, params.p_cost
    )
}

/// Read the stored hashes other than countersign's own current argon2id (those that start
/// with `native_prefix(params)`), a page of [`SURVEY_PAGE`] at a time: the survey, and the
/// budget it makes ([`crate::password::HashingPool::survey`] applies it).
pub(crate) async fn survey(
    users: &dyn UserStore,
    native: CostClass,
    params: HashParams,
) -> Result<(Survey, Budget), StoreError> {
    let skip = native_prefix(params);
    let mut counts: BTreeMap<CostClass, u64> = BTreeMap::new();
    let mut unchecked = 0;
    let mut after = UserId(i64::MIN);
    loop {
        let page = users
            .password_hashes_after(after, SURVEY_PAGE, &skip)
            .await?;
        for (_, hash) in &page {
            match CostClass::of(hash) {
                Some(class) => *counts.entry(class).or_default() += 1,
                None => unchecked += 1,
            }
        }
        match page.last() {
            Some((last, _)) if page.len() >= SURVEY_PAGE as usize => after = *last,
            _ => break,
        }
    }
    let budget = Budget::new(native, counts.keys().copied());
    let over_caps = counts
        .iter()
        .filter(|(class, _)| !class.admissible(native))
        .map(|(_, n)| n)
        .sum();
    let survey = Survey {
        budget: budget.classes().collect(),
        users_by_class: counts.into_iter().collect(),
        unchecked,
        over_caps,
    };
    Ok((survey, budget))
}

/// Classes for a log line: `argon2id m=19456 t=2 p=1, bcrypt cost 12`.
pub struct ClassList<'a>(pub &'a [CostClass]);

impl fmt::Display for ClassList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, class) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            class.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::auth::{Auth, AuthConfig, LoginError};
    use crate::keys::{KeyRing, SecretKey};
    use crate::memory::MemoryStore;
    use crate::password::{Hasher, OWASP_PARAMS, Password};
    use crate::user::{NewUser, Role, Username};

    const PW: &[u8] = b"correct horse battery";

    /// The work of a sequence of checks, as units per family: a count for exact classes,
    /// iterations for pbkdf2.
    fn units(run: &[CostClass]) -> BTreeMap<Kind, u64> {
        let mut units: BTreeMap<Kind, u64> = BTreeMap::new();
        for c in run {
            let n = match c.0 {
                Kind::Pbkdf2 { iterations, .. } => u64::from(iterations),
                _ => 1,
            };
            *units.entry(c.family()).or_default() += n;
        }
        units
    }

    fn class(hash: &str) -> CostClass {
        CostClass::of(&PasswordHash::from_phc(hash)).unwrap()
    }

    fn bcrypt_hash(cost: u32) -> String {
        bcrypt::hash_with_salt(PW, cost, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB)
    }

    #[test]
    fn classes_of_each_format() {
        let hex128 = "0".repeat(128);
        let hex64 = "0".repeat(64);
        assert_eq!(class(&bcrypt_hash(4)).to_string(), "bcrypt cost 4");
        assert_eq!(
            class(&bcrypt_hash(4).replacen("$2b$", "$2y$", 1)),
            class(&bcrypt_hash(4)),
            "the variant does not change the work"
        );
        assert_eq!(
            class(&format!("scrypt:32768:8:1$abc${hex128}")).to_string(),
            "werkzeug-scrypt N=32768 r=8 p=1"
        );
        assert_eq!(
            class(&format!("scrypt$abc${hex128}")),
            class(&format!("scrypt:32768:8:1$xyz${hex128}")),
            "Werkzeug's defaults"
        );
        assert_eq!(
            class(&format!("pbkdf2:sha256:600000$abc${hex64}")).to_string(),
            "werkzeug-pbkdf2 sha256 600000 iterations"
        );
        let argon = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA";
        assert_eq!(
            class(argon).to_string(),
            "argon2id m=65536 t=3 p=4 16-byte hash"
        );
        let h = Hasher::new(OWASP_PARAMS)
            .unwrap()
            .hash(&Password::new("x"))
            .unwrap();
        assert_eq!(
            CostClass::of(&h),
            Some(CostClass::argon2id(OWASP_PARAMS)),
            "the native class is what the hasher makes"
        );
        assert!(h.as_str().starts_with(&native_prefix(OWASP_PARAMS)));
        assert_eq!(
            CostClass::argon2id(OWASP_PARAMS).to_string(),
            "argon2id m=19456 t=2 p=1"
        );
        for unchecked in [
            "nonsense",
            "sha256$salt$abcdef",
            "$argon2id$nonsense",
            &format!("pbkdf2:sha256:1000000000$s${hex64}"),
        ] {
            assert_eq!(CostClass::of(&PasswordHash::from_phc(unchecked)), None);
        }
    }

    /// Each dummy is a well-formed hash of its own class that the checking code runs in
    /// full (a refusal before the work would be a timing leak) and that does not match.
    #[test]
    fn dummies_are_checked_in_full_and_never_match() {
        let pw = Password::new("correct horse battery");
        let hasher = Hasher::new(HashParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        })
        .unwrap();
        let classes = [
            class(&bcrypt_hash(4)),
            class(&format!("scrypt:16:8:1$abc${}", "0".repeat(128))),
            class(&format!("pbkdf2:sha256:10$abc${}", "0".repeat(64))),
            class(&format!("pbkdf2:sha512:10$abc${}", "0".repeat(128))),
            class("$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA"),
            class("$argon2d$v=16$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA"),
            CostClass::argon2id(hasher.params()),
        ];
        for c in classes {
            let dummy = c.dummy();
            assert_eq!(CostClass::of(&dummy), Some(c), "{c}");
            // The legacy formats report a refusal before the work as `None`.
            if let Some(legacy) = LegacyHash::recognise(dummy.as_str()) {
                assert_eq!(legacy.unwrap().verify(PW), Some(false), "{c}");
            }
            let verdict = hasher.verify(&pw, &dummy).unwrap();
            assert!(!verdict.matches, "{c}");
        }
        // argon2: the crate itself accepts the dummy and computes (a mismatch, not an
        // error about the string).
        use argon2::PasswordVerifier as _;
        let dummy = CostClass::argon2id(hasher.params()).dummy();
        let parsed = argon2::PasswordHash::new(dummy.as_str()).unwrap();
        assert_eq!(
            argon2::Argon2::default().verify_password(PW, &parsed),
            Err(argon2::password_hash::Error::Password)
        );
    }

    /// The pure rule: whatever ran first, the padding completes the same work.
    #[test]
    fn every_failure_does_each_families_top_once() {
        let native = CostClass::argon2id(OWASP_PARAMS);
        let bcrypt12 = class(&format!("$2b$12${}", "a".repeat(53)));
        let scrypt = class(&format!("scrypt:32768:8:1$s${}", "0".repeat(128)));
        let pbkdf2 = |i: u32| class(&format!("pbkdf2:sha256:{i}$s${}", "0".repeat(64)));
        let budget = Budget::new(native, [bcrypt12, scrypt, pbkdf2(600_000), pbkdf2(150_000)]);
        assert_eq!(
            budget.classes().collect::<Vec<_>>().len(),
            4,
            "one per family"
        );
        let work = |ran: Option<CostClass>| {
            let run: Vec<_> = ran
                .into_iter()
                .chain(budget.pads(ran).into_iter().map(|(c, _)| c))
                .collect();
            units(&run)
        };
        let unknown = work(None);
        assert_eq!(unknown.len(), 4);
        assert_eq!(
            unknown[&pbkdf2(1).family()],
            600_000,
            "the top of the family"
        );
        for ran in [native, bcrypt12, scrypt, pbkdf2(600_000), pbkdf2(150_000)] {
            assert_eq!(work(Some(ran)), unknown, "{ran}");
        }
        // Only countersign's own: a failure is one argon2id, as before.
        let alone = Budget::new(native, []);
        assert!(alone.pads(Some(native)).is_empty());
        assert_eq!(
            alone
                .pads(None)
                .into_iter()
                .map(|(c, _)| c)
                .collect::<Vec<_>>(),
            [native]
        );
    }

    #[test]
    fn budgets_grow_by_family_and_refuse_classes_over_the_caps() {
        let native = CostClass::argon2id(OWASP_PARAMS);
        let pbkdf2 = |i: u32| class(&format!("pbkdf2:sha256:{i}$s${}", "0".repeat(64)));
        let budget = Budget::new(native, [pbkdf2(600_000)]);
        assert!(budget.covers(pbkdf2(150_000)));
        assert!(budget.lacks(pbkdf2(1_000_000)));
        assert!(!budget.covers(class(&bcrypt_hash(4))));
        let grown = budget.with(pbkdf2(1_000_000));
        assert_eq!(grown.classes().count(), 2);
        assert!(grown.covers(pbkdf2(600_000)));
        let huge =
            class("$argon2id$v=19$m=1048576,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA");
        assert!(!budget.lacks(huge), "never made the price of every failure");
        assert_eq!(budget.with(huge).classes().count(), 2);
        // countersign's own parameters are admissible whatever they are.
        let big_native = CostClass::argon2id(HashParams {
            m_cost_kib: 1 << 20,
            t_cost: 3,
            p_cost: 1,
        });
        assert_eq!(Budget::new(big_native, []).classes().count(), 1);
    }

    const FAST: HashParams = HashParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// A service over a memory store with one hashing worker (the checks run in order)
    /// and no throttling in the way.
    fn service() -> (Arc<Auth>, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let (key, _) = SecretKey::generate(32).unwrap();
        let mut config = AuthConfig::default();
        config.throttle.per_account = 1000;
        config.throttle.per_address = 1000;
        let auth = Auth::builder(KeyRing::single(key))
            .config(config)
            .store(Arc::clone(&store))
            .hash_params(FAST)
            .hashing_workers(1)
            .build()
            .unwrap();
        (auth, store)
    }

    /// A user with this stored hash, as an import leaves it.
    async fn imported(store: &MemoryStore, name: &str, hash: &str) -> crate::user::User {
        store
            .create_user(NewUser {
                username: Username::parse(name).unwrap(),
                role: Role::user(),
                password_hash: PasswordHash::from_phc(hash),
                created_at: crate::clock::UnixTime(1_800_000_000),
            })
            .await
            .unwrap()
    }

    fn pbkdf2_hash(iterations: u32) -> String {
        let mut out = [0u8; 32];
        let rounds = std::num::NonZeroU32::new(iterations).unwrap();
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            b"saltsalt",
            PW,
            &mut out,
        );
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        format!("pbkdf2:sha256:{iterations}$saltsalt${hex}")
    }

    /// The equal-time rule end to end: after a survey, every failed login (a wrong password
    /// for each format, an unknown or invalid name, a disabled account's right password, a
    /// stored hash that cannot be checked) runs the same work, counted per check by the
    /// pool; a right password runs only its own check.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_failed_login_does_the_same_work_and_a_success_only_its_own() {
        let (auth, store) = service();
        let pw = std::str::from_utf8(PW).unwrap();
        auth.create_user("alice", Password::new(pw), Role::user())
            .await
            .unwrap();
        let erin = auth
            .create_user("erin", Password::new(pw), Role::user())
            .await
            .unwrap();
        auth.disable_user(erin.id).await.unwrap();
        imported(&store, "bob", &bcrypt_hash(4)).await;
        imported(&store, "carol", &pbkdf2_hash(10)).await;
        imported(&store, "dave", &pbkdf2_hash(20)).await;
        imported(&store, "frank", "sha256$salt$abcdef").await;

        let survey = auth.survey_password_hashes().await.unwrap();
        let native = CostClass::argon2id(FAST);
        let (bcrypt4, pbkdf2_10, pbkdf2_20) = (
            class(&bcrypt_hash(4)),
            class(&pbkdf2_hash(10)),
            class(&pbkdf2_hash(20)),
        );
        assert_eq!(survey.budget, [native, pbkdf2_20, bcrypt4]);
        assert_eq!(
            survey.users_by_class,
            [(pbkdf2_10, 1), (pbkdf2_20, 1), (bcrypt4, 1)],
            "countersign's own hashes are not read"
        );
        assert_eq!((survey.unchecked, survey.over_caps), (1, 0));
        assert_eq!(auth.pool().cost_classes(), survey.budget);

        let pool = auth.pool();
        pool.take_trace();
        let failures = [
            ("alice", "wrong password"),
            ("bob", "wrong password"),
            ("carol", "wrong password"),
            ("dave", "wrong password"),
            ("erin", pw),
            ("frank", pw),
            ("nobody", pw),
            ("<bad name>", pw),
        ];
        for (name, password) in failures {
            let e = auth.login(name, Password::new(password), "10.0.0.1").await;
            assert!(matches!(e, Err(LoginError::Invalid)), "{name}: {e:?}");
        }
        let trace = pool.take_trace();
        assert_eq!(trace.len(), failures.len(), "one check per login");
        let unknown = units(&trace[6]);
        assert_eq!(
            unknown,
            units(&[native, pbkdf2_20, bcrypt4]),
            "an unknown name: every class once, against its dummy"
        );
        for ((name, _), run) in failures.iter().zip(&trace) {
            assert_eq!(units(run), unknown, "{name}: {run:?}");
        }
        // Each user's own check first: the padding follows it.
        assert_eq!(trace[1][0], bcrypt4);
        assert_eq!(trace[2][0], pbkdf2_10);
        assert_eq!(
            trace[2].len(),
            4,
            "pbkdf2 10, then argon2id, a 10-iteration pbkdf2 pad and bcrypt"
        );

        // Right passwords: only their own check; the imported one is then rehashed.
        assert!(
            auth.login("alice", Password::new(pw), "10.0.0.1")
                .await
                .is_ok()
        );
        assert!(
            auth.login("bob", Password::new(pw), "10.0.0.1")
                .await
                .is_ok()
        );
        assert_eq!(pool.take_trace(), [vec![native], vec![bcrypt4]]);
        let bob = store.user_by_name("bob").await.unwrap().unwrap();
        assert_eq!(CostClass::of(&bob.password_hash), Some(native));

        // bcrypt's last user has moved on: the next survey drops the class.
        let survey = auth.survey_password_hashes().await.unwrap();
        assert_eq!(survey.budget, [native, pbkdf2_20]);
        let e = auth.login("nobody", Password::new(pw), "10.0.0.1").await;
        assert!(matches!(e, Err(LoginError::Invalid)));
        assert_eq!(pool.take_trace(), [vec![native, pbkdf2_20]]);
    }

    /// Without imported hashes a failure is one argon2id check, as before the rule; a
    /// class imported after the survey joins at its first check, and from then on an
    /// unknown name pays for it too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_class_the_survey_did_not_see_joins_at_its_first_check() {
        let (auth, store) = service();
        let pw = std::str::from_utf8(PW).unwrap();
        auth.create_user("alice", Password::new(pw), Role::user())
            .await
            .unwrap();
        let survey = auth.survey_password_hashes().await.unwrap();
        let native = CostClass::argon2id(FAST);
        assert_eq!(survey.budget, [native]);
        let pool = auth.pool();
        pool.take_trace();
        for name in ["alice", "nobody"] {
            let e = auth
                .login(name, Password::new("wrong pass"), "10.0.0.2")
                .await;
            assert!(matches!(e, Err(LoginError::Invalid)));
        }
        assert_eq!(pool.take_trace(), [vec![native], vec![native]]);

        imported(&store, "late", &bcrypt_hash(4)).await;
        let bcrypt4 = class(&bcrypt_hash(4));
        for name in ["late", "nobody", "alice"] {
            let e = auth
                .login(name, Password::new("wrong pass"), "10.0.0.2")
                .await;
            assert!(matches!(e, Err(LoginError::Invalid)));
        }
        assert_eq!(
            pool.take_trace(),
            [
                vec![bcrypt4, native],
                vec![native, bcrypt4],
                vec![native, bcrypt4]
            ]
        );
        assert_eq!(pool.cost_classes(), [native, bcrypt4]);
    }
}
