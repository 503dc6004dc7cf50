//! The passkeys section of the account pages: the list of a user's passkeys with rename
//! and remove, and "Add a passkey" (`templates/passkeys_section.html`, driven by
//! `/passkeys.js` and the JSON routes of [`crate::server::passkeys`]), on
//! `/account/security`.

use countersign::auth::Principal;
use countersign::user::UserId;
use countersign_axum::csrf_token_for;

use crate::display::format_utc;
use crate::server::state::App;

/// One row of the passkey list.
pub(super) struct PasskeyRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) created: String,
    pub(super) last_used: String,
    pub(super) synced: bool,
    /// When the signature counter went backwards, said as a warning.
    pub(super) warning: Option<String>,
}

/// What the section shows.
pub(super) struct PasskeysView {
    /// Whether passkeys are on.
    pub(super) enabled: bool,
    /// The RP ID, when on.
    pub(super) rp_id: String,
    /// The session's CSRF token, for the script's calls.
    pub(super) csrf_token: String,
    pub(super) rows: Vec<PasskeyRow>,
    /// Whether adding or removing a passkey asks for a current code (the step-up rule of
    /// `server::mfa::step_up`): the section then has a field for it.
    pub(super) needs_code: bool,
}

impl PasskeysView {
    /// The section for `user`, signed in as `principal`; `needs_code` as the page decided.
    ///
    /// # Errors
    /// When the store fails.
    pub(super) async fn load(
        app: &App,
        principal: &Principal,
        user: UserId,
        needs_code: bool,
    ) -> Result<Self, countersign::store::StoreError> {
        let rp = app.engine().passkey_config();
        let rows = if rp.is_some() {
            app.engine()
                .passkeys(user)
                .await?
                .into_iter()
                .map(|p| PasskeyRow {
                    id: p.id.as_str().to_owned(),
                    name: p.name,
                    created: format_utc(p.created_at),
                    last_used: p
                        .last_used_at
                        .map_or_else(|| "never".to_owned(), format_utc),
                    synced: p.synced,
                    warning: p.counter_regressed_at.map(|at| {
                        format!(
                            "On {}, a sign-in with this passkey was refused: its signature \
                             counter went backwards, as when a key has been copied. Remove \
                             it if you do not recognise this.",
                            format_utc(at)
                        )
                    }),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            enabled: rp.is_some(),
            rp_id: rp.map(|rp| rp.rp_id().to_owned()).unwrap_or_default(),
            csrf_token: csrf_token_for(principal).unwrap_or_default().to_owned(),
            rows,
            needs_code,
        })
    }
}
