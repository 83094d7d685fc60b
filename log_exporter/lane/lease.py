"""A lane's lease and the writes of its state: acquire, renew, fence, release.

The lease and the state are one object in S3, written conditionally on its ETag (see
`aws/state_store.py`), so every write of the state renews the lease and every renewal writes the
state: they live together here. The protocol, as a sequence:

1. `acquire`: read the state; wait while another live runner holds an unexpired lease (or take
   over one whose runner no longer exists). With work in flight, write the lease at once (a
   lost race reads again); with none, keep it in memory only (`pending`): the lane's first
   write, with its first intent, takes it, and a lost race there is `LeaseRaceLost` (nothing
   was created yet: the lane starts over).
2. `save` / `heartbeat`: each write renews the lease; every wait of the lane renews it before a
   third of it has run out. A write that finds another runner's raises StateConflictError.
3. `fence`: before a worker's PUT, `LeaseLapsed` once the last write is older than the lease.
4. `release`: the last write, letting go of the lease (none at all if it was never written and
   nothing changed).
"""

from __future__ import annotations

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.clock import skew_margin
from log_exporter.aws.retry import LEASE_BUSY
from log_exporter.aws.state_store import StateStore
from log_exporter.core.polling import TaskDurations
from log_exporter.core.state import LaneState
from log_exporter.errors import LaneBusyError, LogExporterError, StateConflictError
from log_exporter.lane.pacer import Pacer
from log_exporter.lane.runner import owner_gone
from log_exporter.lane.settings import LaneSettings
from log_exporter.progress import Reporter


class LeaseLapsed(Exception):
    """Internal: a direct read's PUT found the lease may have lapsed (no state write of ours for
    longer than the lease less the clock margin): the folder's writes stop; the lane's next
    write tells whether another runner took over."""


class LeaseRaceLost(Exception):
    """Internal: the write that was to take the lease found that another runner wrote the
    lane's state since it was read; nothing was created yet, so the lane starts over."""


class LeaseKeeper:
    """The lane's state as last read or written (`state`), whether it changed since (`changed`,
    `unsaved`), and the lease it holds in it (see the module's docstring)."""

    def __init__(
        self,
        *,
        name: str,
        account: str,
        account_id: str,
        region: str,
        owner: str,
        settings: LaneSettings,
        store: StateStore,
        archive: ArchiveBucket,
        pacer: Pacer,
        reporter: Reporter,
        durations: TaskDurations,
    ) -> None:
        self.name = name
        self.account = account
        self.account_id = account_id
        self.region = region
        self.owner = owner
        self.settings = settings
        self.store = store
        self.archive = archive
        self.pacer = pacer
        self.reporter = reporter
        self.durations = durations
        self.clock_check = pacer.clock_check  # raises if our clock is off AWS's
        self.state = LaneState(account_id, region)
        self._dirty = False  # the state changed since it was last written
        # The lease is taken by the lane's first write, with its first intent, when no earlier
        # runner left work in flight; until then it is only in memory (see `acquire`).
        self._pending = False
        self._last_save = 0.0  # a clock() time: when the lease was last written
        self._fresh = settings.fresh_archive  # the first read of the state may be skipped

    # --- what the lane's parts tell it ----------------------------------------------------------
    def changed(self) -> None:
        """The state changed in memory: it is written with the next save, or the release."""
        self._dirty = True

    @property
    def unsaved(self) -> bool:
        """Whether the state changed since it was last written."""
        return self._dirty

    def save_if_changed(self) -> None:
        if self._dirty:
            self.save()

    def ensure_held(self) -> None:
        """Before creating a task whose intent was saved a while ago (half a lease or more): our
        lease may have run out meanwhile (a stalled process) and another runner exported the
        window; a write proves we still hold it (StateConflictError if not)."""
        if self.pacer.clock() - self._last_save >= self.settings.lease_seconds / 2:
            self.save()

    def assume_held(self, since: float, *, written: bool = True) -> None:
        """For tests: the lease as `acquire` leaves it at `since` (a clock() time): written, or
        (`written=False`) read free and to be taken by the lane's first write."""
        self._last_save = since
        self._pending = not written

    # --- the protocol ------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lease (see the module's docstring); a fresh hold: nothing changed yet."""
        backoff = LEASE_BUSY.backoff()
        announced = False
        self._pending = False
        self._dirty = False
        while True:
            if self._fresh:  # the archive held nothing when the run started: no state yet
                self._fresh = False
                state = LaneState(self.account_id, self.region)
            else:
                state = self.store.load(self.account_id, self.region, self.account)
            if state.etag is None and self.settings.guard_lost_state:
                self._guard_lost_state()  # before our first write creates the state object
            self.clock_check()  # the lease's expiry is read with our clock
            sent = self.pacer.clock()  # the lease runs from here (see `save`)
            now = self.pacer.now_ms()
            if state.leased_by_other(self.owner, now) and owner_gone(state.lease_owner):
                self.reporter.notice(
                    self.name, f"runner {state.lease_owner} no longer exists; taking over"
                )
            elif state.leased_by_other(self.owner, now):
                if not self.settings.wait_for_lease:
                    raise LaneBusyError(
                        f"{self.name}: another runner ({state.lease_owner}) holds it"
                    )
                if not announced:
                    self.reporter.notice(self.name, f"waiting for runner {state.lease_owner}")
                    announced = True
                self.pacer.check_deadline()
                wait = min(backoff.next(), (state.lease_expires_ms - now) / 1000 + 0.05)
                self.pacer.sleep(max(wait, 0.05))
                continue
            state.lease_owner = self.owner
            state.lease_expires_ms = now + int(self.settings.lease_seconds * 1000)
            self.durations.remember(state.durations)
            if not state.intents:
                # Nothing in flight to adopt or clean up: the lease is written with the first
                # intent (a request less before the first task), conditionally on what was
                # read, so a runner that wrote meanwhile makes us start over (LeaseRaceLost).
                self.state = state
                self._pending = True
                self._last_save = sent
                return
            try:
                self.store.save(state)
            except StateConflictError:
                continue
            self.state = state
            self._last_save = sent
            return

    def _guard_lost_state(self) -> None:
        """Refuse to start from nothing over an archive that already holds this account's days.

        With no state object for any region of the account but exports under its folder, the
        state was lost (or the archive copied in by hand): a run would export those days again.
        `sync` rebuilds the state from the objects. Costs two LISTs, for a lane's first run only
        (and again when it starts over after losing the race for its first write).
        """
        folder = "/".join(p for p in (self.settings.prefix, self.account_id) if p) + "/"
        if self.archive.has_objects(self.store.account_folder(self.account_id)):
            return  # another region of the account has a state: the folder is shared with it
        if self.archive.has_objects(folder):
            raise LogExporterError(
                f"s3://{self.settings.bucket}/{folder} already holds exports, but there is no "
                f"state for account {self.account_id}: run `log-exporter sync --config FILE "
                f"--account {self.account}` first (a run would export those days again)"
            )

    def save(self) -> None:
        """Write the state, renewing the lease in it (taking it, if it is still `pending`)."""
        self.state.durations = self.durations.by_group()
        self.state.lease_owner = self.owner
        # The lease runs from when the write is sent, not from its answer: a runner stalled
        # (SIGSTOP, suspend) while the PUT was under way must not take a lease that ran out
        # meanwhile for a fresh one.
        sent = self.pacer.clock()
        self.state.lease_expires_ms = self.pacer.now_ms() + int(self.settings.lease_seconds * 1000)
        try:
            self.store.save(self.state)
        except StateConflictError:
            if self._pending:  # our first write: we never held the lane
                raise LeaseRaceLost() from None
            raise
        self._pending = False
        self._last_save = sent
        self._dirty = False

    def heartbeat(self) -> None:
        """Renew the lease (and persist pending changes) before a third of it has run out.
        A lease not written yet (see `acquire`) has nothing to renew: a runner that takes the
        lane meanwhile makes our first write fail, and the lane start over."""
        if self._pending:
            return
        if self.pacer.clock() - self._last_save > self.settings.lease_seconds / 3:
            self.clock_check()
            self.save()  # a failure (StateConflictError) ends the lane: it creates no more

    def fence(self) -> None:
        """Before a worker's PUT: LaneStopped once the lane stops; LeaseLapsed (and the lane's
        other workers halted) once our last state write is older than the lease less the clock
        margin: another runner may have taken the lane over and be deleting this folder as a
        cut-short one. S3 has no fencing token: this bounds a stalled runner's writes to the
        one PUT under way when it wakes up."""
        self.pacer.halted()
        lease = self.settings.lease_seconds
        # the clock margin, but at most a sixth of a (test's) short lease, renewed every L/3
        if self.pacer.clock() - self._last_save >= lease - min(skew_margin(lease), lease / 6):
            self.pacer.halt_workers()
            raise LeaseLapsed()

    def release(self) -> str | None:
        """Let go of the lease; the reason the state could not be saved, if it could not."""
        if self.state.lease_owner != self.owner:
            return None
        pending, self._pending = self._pending, False
        self.state.durations = self.durations.by_group()
        self.state.lease_owner = None
        self.state.lease_expires_ms = 0
        if pending and not self._dirty:
            return None  # the lease was never written, and nothing changed: no request at all
        try:
            self._release_write()
        except LogExporterError as exc:
            if pending and isinstance(exc, StateConflictError):
                return None  # another runner has the lane since we read it; it learns the same
            return f"could not save the lane's state: {exc}"
        return None

    def _release_write(self) -> None:
        """Write the state that lets go of the lease. A write of ours cut short (a stop signal
        raised on the main thread during a request) may have gone through with an ETag we never
        read: if the object still holds our lease, unexpired, nobody else wrote it since, and
        this write goes over it."""
        try:
            self.store.save(self.state)
        except StateConflictError:
            stored = self.store.load(self.account_id, self.region, self.account)
            if stored.lease_owner != self.owner or stored.lease_expires_ms <= self.pacer.now_ms():
                raise
            self.state.etag = stored.etag
            self.store.save(self.state)
