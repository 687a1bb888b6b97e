//! Authentication: from an `Authorization` header and a client address to an
//! [`Authentication`].
//!
//! The work is split so that the caller decides where the CPU-heavy part runs:
//! [`Authenticator::begin`] answers everything it can at once (no header, a bearer token, a
//! remembered password, a rate-limited address, a malformed header) and otherwise returns a
//! [`PendingVerification`] whose [`PendingVerification::run`] is the bcrypt/argon2 work, to be
//! run on a blocking pool; [`Authenticator::finish`] then records the outcome. The async
//! [`Authenticator::authenticate`] does all three with tokio's blocking pool and a bound on
//! concurrent verifications.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::AccessError;
use crate::cache::VerifiedCache;
use crate::clock::{Clock, SystemClock};
use crate::config::AuthConfig;
use crate::credentials::{
    CredentialFiles, CredentialSet, CredentialSummary, Identity, PasswordHash,
};
use crate::header::{HeaderError, PresentedCredentials, Secret, parse_authorization};
use crate::ratelimit::FailureLimiter;
use gomodproxy_file_watch::{ChangeTracker, Watcher};

/// Who a request comes from, as far as its credentials say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// No credentials (or authentication is off).
    Anonymous,
    /// Valid credentials.
    Authenticated(Identity),
    /// Credentials that are wrong or unusable: answer 401 with [`Authenticator::challenge`]
    /// and the failure's text.
    Failed(AuthFailure),
    /// Too many failed attempts from this address: answer 429 with `Retry-After`.
    RateLimited {
        /// When the address may try again.
        retry_after: Duration,
    },
}

impl Authentication {
    /// The identity, if authenticated.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Authentication::Authenticated(identity) => Some(identity),
            _ => None,
        }
    }
}

/// Why presented credentials were not accepted. The text is what a 401 answer says: it never
/// tells an unknown user from a wrong password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The header could not be parsed.
    #[error("{0}")]
    Malformed(HeaderError),
    /// Unknown user or wrong password.
    #[error("invalid username or password")]
    InvalidPassword,
    /// Unknown token.
    #[error("invalid token")]
    InvalidToken,
}

/// The result of [`Authenticator::begin`].
#[derive(Debug)]
pub enum Step {
    /// Decided without hashing.
    Done(Authentication),
    /// A password must be verified: run [`PendingVerification::run`] off the async executor,
    /// then hand its result to [`Authenticator::finish`].
    Verify(PendingVerification),
}

/// A password verification to run, owning everything it needs (`Send + 'static`).
#[derive(Debug)]
pub struct PendingVerification {
    user: String,
    password: Secret,
    hash: Arc<PasswordHash>,
    /// `None` when the user is unknown: the hash is a stand-in and the answer is no.
    identity: Option<Identity>,
    generation: u64,
    client: IpAddr,
}

impl PendingVerification {
    /// Verifies the password: milliseconds to seconds of CPU.
    pub fn run(self) -> VerifiedAttempt {
        let matches = self.hash.verify(self.password.expose());
        let identity = if matches { self.identity } else { None };
        VerifiedAttempt {
            user: self.user,
            password: self.password,
            identity,
            generation: self.generation,
            client: self.client,
        }
    }
}

/// The outcome of a [`PendingVerification`], for [`Authenticator::finish`].
#[derive(Debug)]
pub struct VerifiedAttempt {
    user: String,
    password: Secret,
    identity: Option<Identity>,
    generation: u64,
    client: IpAddr,
}

/// The current credential set with its generation number (bumped by each reload).
#[derive(Debug)]
struct Loaded {
    set: CredentialSet,
    generation: u64,
}

/// Checks credentials against the user and token files; reloads them on demand and, with
/// [`Authenticator::watch`], when they change.
pub struct Authenticator {
    files: CredentialFiles,
    loaded: ArcSwap<Loaded>,
    generations: AtomicU64,
    /// Serialises reloads, so that two reloads never race to install older content.
    reload_lock: Mutex<()>,
    tracker: ChangeTracker,
    cache: VerifiedCache,
    limiter: FailureLimiter,
    verifications: tokio::sync::Semaphore,
    /// Basic credentials being verified now, by their cache key: identical ones wait for the
    /// first verification and then hit the cache (see [`Authenticator::authenticate`]).
    in_flight: Mutex<HashMap<crate::cache::Key, Arc<tokio::sync::Mutex<()>>>>,
    clock: Arc<dyn Clock>,
    realm: String,
    watch_interval: Duration,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("files", &self.files)
            .field("loaded", &self.summary())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Loads the configured credential files. With none configured, every request is
    /// [`Authentication::Anonymous`].
    pub fn new(cfg: &AuthConfig) -> Result<Authenticator, AccessError> {
        Self::with_clock(cfg, Arc::new(SystemClock))
    }

    /// [`Authenticator::new`] with a clock of the caller's (tests advance a
    /// [`crate::clock::ManualClock`] instead of sleeping).
    pub fn with_clock(
        cfg: &AuthConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Authenticator, AccessError> {
        if cfg.max_concurrent_verifications == 0 {
            return Err(AccessError::Config {
                key: "auth.max_concurrent_verifications".into(),
                reason: "must be at least 1".into(),
            });
        }
        if cfg.realm.contains(['"', '\\']) || cfg.realm.chars().any(char::is_control) {
            return Err(AccessError::Config {
                key: "auth.realm".into(),
                reason: "must not contain quotes, backslashes or control characters".into(),
            });
        }
        let files = cfg.files();
        let tracker = ChangeTracker::new(files.paths());
        let set = CredentialSet::load(&files)?;
        Ok(Authenticator {
            files,
            loaded: ArcSwap::from_pointee(Loaded { set, generation: 0 }),
            generations: AtomicU64::new(0),
            reload_lock: Mutex::new(()),
            tracker,
            cache: VerifiedCache::new(cfg.cache_ttl, cfg.cache_max_entries),
            limiter: FailureLimiter::new(&cfg.rate_limit)?,
            verifications: tokio::sync::Semaphore::new(cfg.max_concurrent_verifications),
            in_flight: Mutex::new(HashMap::new()),
            clock,
            realm: cfg.realm.clone(),
            watch_interval: cfg.watch_interval,
        })
    }

    /// Reports whether authentication is on (a user or token file is configured).
    pub fn enabled(&self) -> bool {
        self.files.any()
    }

    /// Counts of the loaded users, tokens and groups.
    pub fn summary(&self) -> CredentialSummary {
        self.loaded.load().set.summary()
    }

    /// The `WWW-Authenticate` value for a 401 answer: a Basic challenge when users are
    /// configured, a Bearer one when tokens are (both when both). `None` when authentication
    /// is off.
    pub fn challenge(&self) -> Option<String> {
        let realm = &self.realm;
        match (&self.files.htpasswd, &self.files.tokens) {
            (Some(_), Some(_)) => Some(format!(
                "Basic realm=\"{realm}\", charset=\"UTF-8\", Bearer realm=\"{realm}\""
            )),
            (Some(_), None) => Some(format!("Basic realm=\"{realm}\", charset=\"UTF-8\"")),
            (None, Some(_)) => Some(format!("Bearer realm=\"{realm}\"")),
            (None, None) => None,
        }
    }

    /// Re-reads the credential files and swaps the new set in atomically. On error the
    /// previous set stays in force and the error says why (file and line). Remembered
    /// verifications are forgotten on success.
    pub fn reload(&self) -> Result<CredentialSummary, AccessError> {
        let _serial = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.tracker.mark();
        let set = CredentialSet::load(&self.files)?;
        let summary = set.summary();
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.loaded.store(Arc::new(Loaded { set, generation }));
        self.cache.clear();
        Ok(summary)
    }

    /// Starts a thread that reloads the files when they change (every `auth.watch_interval`),
    /// logging the outcome on target `gomodproxy::auth`. `None` when there is nothing to watch
    /// or the interval is zero. Dropping the [`Watcher`] stops it.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<Option<Watcher>> {
        if self.tracker.is_empty() || self.watch_interval.is_zero() {
            return Ok(None);
        }
        Watcher::spawn(
            "auth",
            self.watch_interval,
            Arc::downgrade(self),
            Authenticator::reload_if_changed,
        )
        .map(Some)
    }

    /// Reloads if a credential file changed since the last load; logs the outcome. Returns
    /// whether a reload was attempted.
    pub fn reload_if_changed(&self) -> bool {
        if !self.tracker.changed() {
            return false;
        }
        match self.reload() {
            Ok(summary) => {
                tracing::info!(target: "gomodproxy::auth", %summary, "credential files reloaded")
            }
            Err(error) => tracing::warn!(
                target: "gomodproxy::auth",
                %error,
                "credential files changed but could not be loaded; keeping the previous ones"
            ),
        }
        true
    }

    /// Everything that can be decided without a password hash; see the module docs.
    pub fn begin(&self, authorization: Option<&str>, client: IpAddr) -> Step {
        if !self.enabled() {
            return Step::Done(Authentication::Anonymous);
        }
        let Some(header) = authorization else {
            return Step::Done(Authentication::Anonymous);
        };
        let now = self.clock.now();
        // A limited address gets no answer about its credentials, right or wrong.
        if let Err(retry_after) = self.limiter.check(client, now) {
            return Step::Done(Authentication::RateLimited { retry_after });
        }
        let presented = match parse_authorization(header) {
            Ok(p) => p,
            Err(e) => return Step::Done(self.failed(client, AuthFailure::Malformed(e))),
        };
        let loaded = self.loaded.load();
        match presented {
            PresentedCredentials::Bearer(token) => match loaded.set.find_token(token.expose()) {
                Some(identity) => Step::Done(Authentication::Authenticated(identity)),
                None => Step::Done(self.failed(client, AuthFailure::InvalidToken)),
            },
            PresentedCredentials::Basic { user, password } => {
                if let Some(identity) =
                    self.cache
                        .get(&user, password.expose(), loaded.generation, now)
                {
                    return Step::Done(Authentication::Authenticated(identity));
                }
                let (hash, identity) = match loaded.set.user(&user) {
                    Some(entry) => (entry.hash.clone(), Some(entry.identity.clone())),
                    None => match loaded.set.dummy_hash() {
                        Some(dummy) => (dummy, None),
                        // No users at all (tokens only): nothing to spend time on.
                        None => {
                            return Step::Done(self.failed(client, AuthFailure::InvalidPassword));
                        }
                    },
                };
                // Count the attempt before its answer, so that parallel guesses are limited.
                if let Err(retry_after) = self.limiter.take(client, now) {
                    return Step::Done(Authentication::RateLimited { retry_after });
                }
                Step::Verify(PendingVerification {
                    user,
                    password,
                    hash,
                    identity,
                    generation: loaded.generation,
                    client,
                })
            }
        }
    }

    /// Records the outcome of a verification: a success is remembered and its attempt given
    /// back; a failure keeps the attempt it used.
    pub fn finish(&self, attempt: VerifiedAttempt) -> Authentication {
        let now = self.clock.now();
        match attempt.identity {
            Some(identity) => {
                self.limiter.give_back(attempt.client, now);
                self.cache.insert(
                    &attempt.user,
                    attempt.password.expose(),
                    identity.clone(),
                    attempt.generation,
                    now,
                );
                Authentication::Authenticated(identity)
            }
            None => Authentication::Failed(AuthFailure::InvalidPassword),
        }
    }

    /// [`Authenticator::begin`], [`PendingVerification::run`] and [`Authenticator::finish`] in
    /// the calling thread: for callers already on a blocking pool.
    pub fn authenticate_blocking(
        &self,
        authorization: Option<&str>,
        client: IpAddr,
    ) -> Authentication {
        match self.begin(authorization, client) {
            Step::Done(outcome) => outcome,
            Step::Verify(pending) => self.finish(pending.run()),
        }
    }

    /// Authenticates a request: inline when no hashing is needed, else on tokio's blocking
    /// pool with at most `auth.max_concurrent_verifications` verifications at once.
    ///
    /// Identical Basic credentials arriving together (a build farm behind one address starting
    /// with a cold cache) are verified once: the others wait for that verification and are
    /// then answered from the cache, so they neither hash again nor take attempts from the
    /// address's allowance — a right password is never limited by its own parallel requests.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: IpAddr,
    ) -> Authentication {
        /// Beyond this many distinct credentials in flight, requests are not coalesced (the map
        /// stays bounded whatever a client sends).
        const MAX_IN_FLIGHT: usize = 4096;
        let (user, password) = match authorization
            .filter(|_| self.enabled())
            .map(parse_authorization)
        {
            Some(Ok(PresentedCredentials::Basic { user, password })) => (user, password),
            _ => return self.authenticate_now(authorization, client).await,
        };
        // The common case first, without the gate: a remembered verification for an address
        // that is not limited.
        let now = self.clock.now();
        if self.limiter.check(client, now).is_ok()
            && let Some(identity) =
                self.cache
                    .get(&user, password.expose(), self.loaded.load().generation, now)
        {
            return Authentication::Authenticated(identity);
        }
        let key = self.cache.key(&user, password.expose());
        let gate = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= MAX_IN_FLIGHT && !map.contains_key(&key) {
                None
            } else {
                Some(map.entry(key).or_default().clone())
            }
        };
        let Some(gate) = gate else {
            return self.authenticate_now(authorization, client).await;
        };
        let outcome = {
            let _turn = gate.lock().await;
            self.authenticate_now(authorization, client).await
        };
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are made only under this lock: two references (the map's and ours) mean
        // nobody else waits.
        if Arc::strong_count(&gate) <= 2 {
            map.remove(&key);
        }
        outcome
    }

    async fn authenticate_now(
        &self,
        authorization: Option<&str>,
        client: IpAddr,
    ) -> Authentication {
        let pending = match self.begin(authorization, client) {
            Step::Done(outcome) => return outcome,
            Step::Verify(pending) => pending,
        };
        let Ok(_permit) = self.verifications.acquire().await else {
            // The semaphore is never closed.
            return Authentication::Failed(AuthFailure::InvalidPassword);
        };
        match tokio::task::spawn_blocking(move || pending.run()).await {
            Ok(attempt) => self.finish(attempt),
            Err(_) => Authentication::Failed(AuthFailure::InvalidPassword),
        }
    }

    fn failed(&self, client: IpAddr, failure: AuthFailure) -> Authentication {
        match self.limiter.take(client, self.clock.now()) {
            Ok(()) => Authentication::Failed(failure),
            Err(retry_after) => Authentication::RateLimited { retry_after },
        }
    }
}
