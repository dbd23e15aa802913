"""The rules a client is graded by. Each has a stable name, a severity, one line on why it matters
against the real service, how to fix it, and a check that turns what was observed into findings
with their evidence (task ids, request ids, virtual times).

The reference for "how a client should behave" is the official SDKs' own ``wait()``
(client-mistakes.md; sdk-wire-contract §5, §11, §15): poll about every 1-5 s, stop at SUCCEEDED /
FAILED / CANCELED / UNKNOWN, retry 429 and 5xx after ``Retry-After`` or a growing delay, and never
re-send what cannot succeed.

Timing is read on the virtual clock (the journal's ``time``). On a frozen clock no time passes
between requests, so the timing rules skip gaps of exactly zero instead of calling them too fast.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from ..tasks.models import PENDING, RUNNING, SUCCEEDED, UNKNOWN
from ..tasks.regions import REGIONS
from .facts import FINISHED, TERMINAL, Entry, Observed, seconds
from .thresholds import Thresholds

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)
# Answers that cannot change however often the same request is sent again.
UNCHANGEABLE_PREFIXES = ("InvalidParameter", "BadRequest", "InvalidURL")
UNCHANGEABLE_CODES = frozenset({
    "InvalidApiKey", "DataInspectionFailed", "IPInfringementSuspect", "AccessDenied",
    "UnsupportedOperation", "ModelNotFound", "Model.AccessDenied", "NoSuchKey",
    "SignatureDoesNotMatch", "InvalidObjectName"})
EVIDENCE_SHOWN = 12  # requests listed per finding (the first and last half); the rest are counted


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    title: str
    why: str
    fix: str

    def describe(self) -> dict[str, str]:
        return {"rule": self.name, "severity": self.severity, "title": self.title,
                "why": self.why, "fix": self.fix}


@dataclass
class Finding:
    rule: str
    severity: str
    summary: str
    key_id: str | None
    account_id: str | None
    region: str | None
    time: str  # when it started (virtual clock, ISO-8601)
    task_ids: list[str] = field(default_factory=list)
    requests: list[Entry] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        rule = RULES[self.rule]
        shown = self.requests
        omitted = 0
        if len(shown) > EVIDENCE_SHOWN:
            half = EVIDENCE_SHOWN // 2
            omitted = len(shown) - EVIDENCE_SHOWN
            shown = shown[:half] + shown[-half:]
        evidence: dict[str, Any] = {
            "task_ids": self.task_ids,
            "request_ids": [e.request_id for e in self.requests],
            "requests": [e.evidence() for e in shown],
            **self.details}
        if omitted:
            evidence["requests_omitted"] = omitted
        return {"rule": self.rule, "severity": self.severity, "title": rule.title,
                "summary": self.summary, "why": rule.why, "fix": rule.fix,
                "key_id": self.key_id, "account_id": self.account_id, "region": self.region,
                "time": self.time, "evidence": evidence}


Check = Callable[[Observed, Thresholds], list[Finding]]
RULES: dict[str, Rule] = {}  # in the order they are reported, within a severity
_CHECKS: dict[str, Check] = {}


def _rule(name: str, severity: str, title: str, why: str, fix: str):
    def register(check: Check) -> Check:
        RULES[name] = Rule(name, severity, title, why, fix)
        _CHECKS[name] = check
        return check
    return register


def check_all(observed: Observed, thresholds: Thresholds) -> list[Finding]:
    found = [f for check in _CHECKS.values() for f in check(observed, thresholds)]
    order = {name: i for i, name in enumerate(RULES)}
    return sorted(found, key=lambda f: (SEVERITIES.index(f.severity), order[f.rule], f.time))


def _finding(observed: Observed, name: str, summary: str, first: Entry, *,
             task_id: str | None = None, requests: list[Entry] | None = None,
             **details: Any) -> Finding:
    key_id, account_id, region = (observed.owner(task_id) if task_id else observed.who(first))
    return Finding(name, RULES[name].severity, summary, key_id, account_id, region,
                   first.time.isoformat(), [task_id] if task_id else [],
                   requests if requests is not None else [first], details)


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _short(task_id: str | None) -> str:
    return (task_id or "?")[:8]


def _span(start: Entry, end: Entry) -> str:
    return _duration(seconds(start.time, end.time))


def _duration(total: float) -> str:
    if total < 120:
        return f"{total:.1f} s" if total < 10 else f"{total:.0f} s"
    if total < 7200:
        return f"{total / 60:.0f} min"
    return f"{total / 3600:.1f} h"


def _answered(entry: Entry) -> str:
    if entry.status is None:
        return "no answer (connection dropped)"
    answer = f"{entry.status} {entry.code}" if entry.code else str(entry.status)
    return f"{answer} cut off" if entry.truncated else answer


def _per_task_key(entries: list[Entry]) -> dict[str | None, list[Entry]]:
    groups: dict[str | None, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.key_id, []).append(entry)
    return groups


# --- polling -----------------------------------------------------------------------------------------
@_rule("unknown-not-terminal", ERROR, "kept polling a task that answered UNKNOWN",
       "UNKNOWN is final: the id expired (24 h) or never existed for this key, and no later poll "
       "will change it; the real service answers it forever while the job hangs and query quota "
       "burns.",
       "Treat UNKNOWN like FAILED: stop polling and report the task as lost (the SDK's wait() "
       "stops on it).")
def _unknown_not_terminal(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    task_ids = {e.task_id for e in observed.entries if e.endpoint == "query" and e.task_id}
    for task_id in sorted(task_ids):
        for queries in _per_task_key(observed.queries(task_id)).values():
            first = next((i for i, q in enumerate(queries) if q.task_status == UNKNOWN), None)
            if first is None:
                continue
            later = queries[first + 1:]
            if len(later) <= th.polls_after_unknown:
                continue
            found.append(_finding(
                observed, "unknown-not-terminal",
                f"task {_short(task_id)}: queried {_n(len(later), 'more time')} over "
                f"{_span(queries[first], later[-1])} after it answered UNKNOWN",
                queries[first], task_id=task_id, requests=queries[first:],
                queries_after_unknown=len(later),
                seconds_after_unknown=round(seconds(queries[first].time, later[-1].time), 3)))
    return found


@_rule("poll-after-terminal", WARNING, "kept polling a finished task",
       "SUCCEEDED, FAILED and CANCELED never change; every further query spends the account's "
       "20-per-second query quota that other tasks need.",
       "Stop polling at the first SUCCEEDED / FAILED / CANCELED / UNKNOWN answer and keep the "
       "result from that answer.")
def _poll_after_terminal(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for task_id in sorted(observed.by_task):
        for queries in _per_task_key(observed.queries(task_id)).values():
            first = next((i for i, q in enumerate(queries) if q.task_status in FINISHED), None)
            if first is None:
                continue
            later = queries[first + 1:]
            if len(later) <= th.polls_after_terminal:
                continue
            done = queries[first]
            found.append(_finding(
                observed, "poll-after-terminal",
                f"task {_short(task_id)}: queried {_n(len(later), 'more time')} after it answered "
                f"{done.task_status} at {done.time:%H:%M:%S}",
                done, task_id=task_id, requests=queries[first:], terminal=done.task_status,
                queries_after_terminal=len(later)))
    return found


def sdk_poll_count(span: float) -> int:
    """How many polls the 1.x SDK's wait() makes in ``span`` seconds from its first poll: it polls,
    then sleeps 1, 1, 2, 2, 2, 4, 4, 4, 5, 5, ... s (sdk-wire-contract §5)."""
    count, at, wait, step = 0, 0.0, 1.0, 0
    while at <= span + 1e-9:
        count += 1
        step += 1
        if step % 3 == 0:
            wait = min(wait * 2, 5.0)
        at += wait
    return count


@_rule("poll-too-fast", WARNING, "polled faster than the official SDKs",
       "The official SDKs wait 1-5 s between polls (tasks take minutes); faster polling buys "
       "nothing and exhausts the 20-per-second query quota shared by the account, which answers "
       "429 to every client on it.",
       "Poll like the SDK's wait(): 1 s at first, growing to about 5 s (1, 1, 2, 2, 2, 4, 4, 4, "
       "5 ... s), or use wait() itself.")
def _poll_too_fast(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for task_id in sorted(observed.by_task):
        for queries in _per_task_key(observed.queries(task_id)).values():
            end = next((i for i, q in enumerate(queries) if q.task_status in TERMINAL),
                       len(queries) - 1)
            polls = queries[:end + 1]
            if len(polls) < th.min_polls_to_judge:
                continue
            gaps = [g for g in (seconds(a.time, b.time) for a, b in zip(polls, polls[1:])) if g > 0]
            if not gaps:
                continue  # a frozen clock: no time passed, nothing to judge
            median = statistics.median(gaps)
            span = seconds(polls[0].time, polls[-1].time)
            expected = sdk_poll_count(span)
            if median < th.min_poll_gap_seconds:
                summary = (f"task {_short(task_id)}: {len(polls)} polls, a median "
                           f"{median:.2f} s apart (the official SDK waits 1-5 s)")
            elif len(polls) > th.poll_count_factor * expected + th.poll_count_slack:
                summary = (f"task {_short(task_id)}: {len(polls)} polls in {_duration(span)}; "
                           f"the SDK's wait() makes about {expected}")
            else:
                continue
            found.append(_finding(observed, "poll-too-fast", summary, polls[0], task_id=task_id,
                                  requests=polls, polls=len(polls),
                                  median_gap_seconds=round(median, 3),
                                  sdk_polls_over_same_time=expected))
    # Query 429s the account's quota gave (not injected by a fault rule or the chaos run).
    throttled: dict[str | None, list[Entry]] = {}
    for entry in observed.entries:
        if (entry.endpoint in ("query", "list") and entry.status == 429 and not entry.faults):
            throttled.setdefault(entry.key_id, []).append(entry)
    for entries in throttled.values():
        found.append(_finding(
            observed, "poll-too-fast",
            f"{len(entries)} queries refused 429 by the account's query quota (20 per second)",
            entries[0], requests=entries, throttled_queries=len(entries)))
    return found


# --- the task's life --------------------------------------------------------------------------------
@_rule("abandoned-task", ERROR, "stopped asking before the task ended",
       "The task runs (and is billed) to its end whether or not anyone asks; a client that stops "
       "at PENDING or RUNNING reports a result it never got (or none) and leaves the video behind.",
       "Poll until SUCCEEDED / FAILED / CANCELED / UNKNOWN (retrying 503 and dropped polls), or "
       "cancel the task while it is PENDING if you no longer need it.")
def _abandoned_task(observed: Observed, th: Thresholds) -> list[Finding]:
    orphans = {pair[0].task_id for pair in duplicate_pairs(observed, th)}
    found = []
    for task_id, create in observed.created.items():
        if task_id in orphans:
            continue  # reported as duplicate-submit: the client never got its id
        asked = observed.by_task.get(task_id, [])
        answers = [e for e in asked if e.endpoint == "query" and e.task_status]
        if any(e.task_status in TERMINAL for e in answers):
            continue
        if any(e.endpoint in ("cancel", "download") and e.status in (200, 206) for e in asked):
            continue  # canceled it, or fetched its result (from a list, say)
        facts = observed.tasks.get(task_id)
        if facts is not None and facts.end_time is not None and _listed_after(
                observed, create, facts.end_time):
            continue  # may have seen the end in the task list
        last = asked[-1] if asked else create
        if not observed.final and seconds(last.time, observed.now) < th.abandon_grace_seconds:
            continue  # still being waited on
        ending = _ending(facts, observed)
        if answers:
            summary = (f"task {_short(task_id)}: last answer {answers[-1].task_status} at "
                       f"{answers[-1].time:%H:%M:%S} "
                       f"({_n(len(answers), 'query', 'queries')}), then no more; "
                       f"{ending}")
        elif queries := [e for e in asked if e.endpoint == "query"]:
            summary = (f"task {_short(task_id)}: {_n(len(queries), 'query', 'queries')} got no "
                       f"status (last: {_answered(queries[-1])}), then no more; {ending}")
        else:
            cut = " (its create answer was cut off)" if create.truncated else ""
            summary = f"task {_short(task_id)}: created{cut} and never queried; {ending}"
        found.append(_finding(observed, "abandoned-task", summary, create, task_id=task_id,
                              requests=[create, *asked],
                              last_answer=answers[-1].task_status if answers else None,
                              status_now=facts.status if facts else None))
    return found


def _ending(facts, observed: Observed) -> str:
    if facts is None:
        return "the emulator no longer knows it"
    if facts.status in (PENDING, RUNNING):
        return f"it was still {facts.status} when the run ended"
    if facts.end_time is not None and facts.end_time <= observed.now:
        detail = f" ({facts.failure_code})" if facts.failure_code else ""
        return f"it ended {facts.status}{detail} at {facts.end_time:%H:%M:%S}, unseen"
    return f"it is {facts.status}"


def _listed_after(observed: Observed, create: Entry, when) -> bool:
    return any(e.time >= when and e.account_id == create.account_id for e in observed.lists)


@_rule("result-not-downloaded", INFO, "never downloaded a finished video",
       "The result link and the file are deleted 24 hours after the task ends; a video nobody "
       "fetched in time is gone (and was paid for).",
       "Download the video as soon as the task is SUCCEEDED and keep the file, not the link.")
def _result_not_downloaded(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for task_id in sorted(observed.by_task):
        succeeded = next((q for q in observed.queries(task_id) if q.task_status == SUCCEEDED),
                         None)
        if succeeded is None or observed.downloads(task_id):
            continue
        if not observed.final and seconds(succeeded.time, observed.now) < th.abandon_grace_seconds:
            continue
        found.append(_finding(observed, "result-not-downloaded",
                              f"task {_short(task_id)}: SUCCEEDED at {succeeded.time:%H:%M:%S}; "
                              "its video was never downloaded", succeeded, task_id=task_id))
    return found


@_rule("download-after-expiry", ERROR, "fetched a result link after it expired",
       "Result links expire 24 hours after the task ends and the file is deleted with them; a "
       "stored link fetched later answers 403 \"Request has expired.\" and the video is lost.",
       "Download right after SUCCEEDED and store the file; never keep the link for later.")
def _download_after_expiry(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for task_id in sorted(observed.by_task):
        for download in observed.downloads(task_id):
            expires = download.link_expires
            if expires is None or download.time <= expires:
                continue
            served = [q for q in observed.queries(task_id) if q.link_expires == expires]
            if served and all(q.time > expires for q in served):
                continue  # served already expired (a fault or the chaos run): not the client's doing
            late = seconds(expires, download.time)
            summary = (f"task {_short(task_id)}: link valid until {expires:%Y-%m-%d %H:%M:%S} "
                       f"fetched {_duration(late)} late")
            found.append(_finding(observed, "download-after-expiry", summary, download,
                                  task_id=task_id, requests=[*served[:1], download],
                                  link_expired_at=expires.isoformat(),
                                  seconds_late=round(late, 3)))
            break  # one per task; fetching it again is retried-unchanged-4xx
    return found


@_rule("incomplete-download", WARNING, "kept a download that was cut off",
       "Downloads of large files get cut off on real networks; a client that does not check the "
       "length and fetch again keeps a broken MP4.",
       "Check Content-Length against the bytes received (or the MP4 itself) and download again, "
       "with Range if you like, while the link is valid.")
def _incomplete_download(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for task_id in sorted(observed.by_task):
        downloads = observed.downloads(task_id)
        cut = next((i for i, d in enumerate(downloads) if d.truncated), None)
        if cut is None:
            continue
        if any(d.status in (200, 206) and not d.truncated for d in downloads[cut + 1:]):
            continue
        found.append(_finding(observed, "incomplete-download",
                              f"task {_short(task_id)}: the download at "
                              f"{downloads[cut].time:%H:%M:%S} was cut off and never fetched "
                              "again in full", downloads[cut], task_id=task_id,
                              requests=downloads[cut:]))
    return found


# --- retries ----------------------------------------------------------------------------------------
@_rule("no-backoff", WARNING, "retried without waiting",
       "A 429 or 5xx means the service is saturated: retrying before Retry-After, or at a fixed "
       "short interval, is refused again and keeps the account throttled.",
       "Wait at least Retry-After (when sent), else back off with growing delays (e.g. 0.5, 1, "
       "2, 4 s with jitter), as the SDK's 2.0 client does.")
def _no_backoff(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for (_, endpoint, _), entries in observed.operations().items():
        task_id = entries[0].task_id if endpoint != "create" else None
        early = next(((f, r) for f, r in zip(entries, entries[1:])
                      if f.failed_transiently and f.retry_after is not None
                      and 0 < seconds(f.time, r.time)
                      < f.retry_after - th.retry_after_tolerance_seconds), None)
        if early is not None:
            failed, retry = early
            gap = seconds(failed.time, retry.time)
            found.append(_finding(
                observed, "no-backoff",
                f"{endpoint} re-sent {gap:.1f} s after {_answered(failed)}, which said "
                f"Retry-After: {failed.retry_after:g}", failed, task_id=task_id,
                requests=[failed, retry], retry_after=failed.retry_after,
                retried_after_seconds=round(gap, 3)))
            continue
        for start, delays in _failure_runs(entries):
            if len(delays) >= th.no_backoff_streak and _not_growing(delays, th):
                found.append(_finding(
                    observed, "no-backoff",
                    f"{endpoint} retried {len(delays)} times in a row after "
                    f"{_answered(entries[start])}, every {max(delays):.1f} s or sooner",
                    entries[start], task_id=task_id,
                    requests=entries[start:start + len(delays) + 1],
                    retry_delays_seconds=[round(d, 3) for d in delays]))
                break
    return found


def _failure_runs(entries: list[Entry]) -> list[tuple[int, list[float]]]:
    """(index of the first, delays before each retry) for every run of transient failures that
    were sent again."""
    runs, i = [], 0
    while i < len(entries) - 1:
        if not entries[i].failed_transiently:
            i += 1
            continue
        start, delays = i, []
        while i < len(entries) - 1 and entries[i].failed_transiently:
            delays.append(seconds(entries[i].time, entries[i + 1].time))
            i += 1
        runs.append((start, delays))
    return runs


def _not_growing(delays: list[float], th: Thresholds) -> bool:
    """Short delays that never grow; a zero delay (a frozen clock) cannot be judged."""
    return (min(delays) > 0 and max(delays) < th.backoff_cap_seconds
            and all(b <= a * 1.05 + 0.01 for a, b in zip(delays, delays[1:])))


@_rule("no-retry-on-throttle", WARNING, "gave up on a throttled submit",
       "The real service refuses the third submit in a second (2 per second per account) and "
       "answers 503 when a model is busy; a client that gives up fails jobs at random under load. "
       "The SDK's 1.x async_call does not retry either.",
       "Retry a 429 / 503 / 504 submit after Retry-After (or a growing delay), a few times; it "
       "created nothing, so retrying is safe.")
def _no_retry_on_throttle(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for (_, endpoint, _), entries in observed.operations().items():
        if endpoint != "create":
            continue
        last = entries[-1]
        if last.status not in (429, 503, 504):
            continue
        wait = max(last.retry_after or 0.0, th.abandon_grace_seconds)
        if not observed.final and seconds(last.time, observed.now) < wait:
            continue
        found.append(_finding(observed, "no-retry-on-throttle",
                              f"create answered {_answered(last)} at {last.time:%H:%M:%S} and "
                              "was never sent again", last, requests=[last]))
    return found


def _unchangeable(entry: Entry) -> bool:
    if (entry.status is None or entry.truncated or not 400 <= entry.status < 500
            or entry.status in (408, 409, 429)):
        return False  # no answer the client could read, or one that may change
    code = entry.code or ""
    return code in UNCHANGEABLE_CODES or code.startswith(UNCHANGEABLE_PREFIXES)


@_rule("retried-unchanged-4xx", WARNING, "re-sent a request whose answer cannot change",
       "InvalidParameter, InvalidApiKey, DataInspectionFailed, \"Model not exist.\" or an expired "
       "link answer the same every time: retrying only delays the real error and spends quota.",
       "Retry only 429 and 5xx; for these, report the error to the user (with its code and "
       "message) or fix the request first.")
def _retried_unchanged(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for (_, endpoint, _), entries in observed.operations().items():
        first = next((i for i, e in enumerate(entries) if _unchangeable(e)), None)
        if first is None or first == len(entries) - 1:
            continue
        refused = entries[first]
        again = entries[first + 1:]
        found.append(_finding(observed, "retried-unchanged-4xx",
                              f"{endpoint} answered {_answered(refused)}, then sent unchanged "
                              f"{_n(len(again), 'more time')}", refused,
                              task_id=refused.task_id if endpoint != "create" else None,
                              requests=entries[first:], resent=len(again)))
    return found


def duplicate_pairs(observed: Observed, th: Thresholds) -> list[tuple[Entry, Entry]]:
    """(first, second) creates with the same body accepted within the window, where nothing ever
    asked about the first task: its answer was lost and the client sent the create again."""
    pairs = []
    by_body: dict[tuple, list[Entry]] = {}
    for create in observed.created.values():
        if create.body_digest:
            owner = create.account_id or create.key_id
            by_body.setdefault((owner, create.body_digest), []).append(create)
    for creates in by_body.values():
        for first, second in zip(creates, creates[1:]):
            if seconds(first.time, second.time) > th.duplicate_window_seconds:
                continue
            if not observed.by_task.get(first.task_id or ""):
                pairs.append((first, second))
    return pairs


@_rule("duplicate-submit", ERROR, "submitted the same task twice",
       "Each accepted create is a task that runs and is billed; re-sending a create whose answer "
       "was lost (a timeout, a dropped connection) makes a second, paid video nobody waits for.",
       "Give creates a long timeout (minutes), and before re-sending one whose answer was lost, "
       "look for the task in GET /api/v1/tasks; retry freely only 429 / 5xx answers, which "
       "created nothing.")
def _duplicate_submit(observed: Observed, th: Thresholds) -> list[Finding]:
    found = []
    for first, second in duplicate_pairs(observed, th):
        lost = "cut off" if first.truncated else "not used"
        found.append(Finding(
            "duplicate-submit", ERROR,
            f"tasks {_short(first.task_id)} and {_short(second.task_id)} were created from the "
            f"same request {_span(first, second)} apart; the first create's answer was {lost} "
            "and nothing ever asked about that task",
            first.key_id, first.account_id, first.region, first.time.isoformat(),
            [first.task_id or "", second.task_id or ""], [first, second],
            {"seconds_apart": round(seconds(first.time, second.time), 3)}))
    return found


# --- hints ------------------------------------------------------------------------------------------
@_rule("submit-burst", INFO, "submitted faster than 2 per second",
       "The real service accepts 2 task submits per second per account and model and refuses "
       "the rest with 429 Throttling.RateQuota.",
       "Queue submits and send at most 2 per second per model (and retry a 429 after "
       "Retry-After).")
def _submit_burst(observed: Observed, th: Thresholds) -> list[Finding]:
    new: dict[tuple, list[Entry]] = {}
    for (key_id, endpoint, _), entries in observed.operations().items():
        if endpoint != "create":
            continue
        for i, entry in enumerate(entries):  # re-sends of a refused create are not new submits
            if entry.key_region is None or (i and entries[i - 1].status != 200):
                continue
            new.setdefault((entry.account_id, entry.model), []).append(entry)
    found = []
    for entries in new.values():
        entries.sort(key=lambda e: (e.time, e.index))
        i = 0
        while i < len(entries):
            window_end = entries[i].time + timedelta(seconds=1)
            inside = [e for e in entries[i:] if e.time < window_end]
            if len(inside) > th.submit_rps:
                found.append(_finding(observed, "submit-burst",
                                      f"{len(inside)} submits of {inside[0].model} within one "
                                      f"second from {inside[0].time:%H:%M:%S}", inside[0],
                                      requests=inside, submits=len(inside)))
                i += len(inside)
            else:
                i += 1
    return found


@_rule("wrong-region-key", INFO, "used a key of the other region",
       "Keys belong to one region: a Singapore key in Beijing (or the reverse) is answered 401 "
       "InvalidApiKey \"Invalid API-key provided.\", exactly like a made-up key.",
       "Pair each base URL with a key of its own region (dashscope.aliyuncs.com: Beijing; "
       "dashscope-intl.aliyuncs.com: Singapore).")
def _wrong_region_key(observed: Observed, th: Thresholds) -> list[Finding]:
    groups: dict[tuple, list[Entry]] = {}
    for entry in observed.entries:
        if entry.key_region and entry.key_region != entry.region:
            groups.setdefault((entry.key_id, entry.region), []).append(entry)
    return [_finding(observed, "wrong-region-key",
                     f"{_n(len(entries), 'request')} to {entries[0].region} with a key of "
                     f"{entries[0].key_region}", entries[0], requests=entries)
            for entries in groups.values()]


@_rule("wrong-region-model", INFO, "asked for a model of the other region",
       "Model names differ by region (Beijing: wanx2.1-kf2v-plus, Singapore: wan2.1-kf2v-plus); "
       "the other region's name is answered 400 InvalidParameter \"Model not exist.\".",
       "Choose the model name by region; wan2.2-kf2v-flash exists in Beijing only.")
def _wrong_region_model(observed: Observed, th: Thresholds) -> list[Finding]:
    groups: dict[tuple, list[Entry]] = {}
    for entry in observed.entries:
        model = entry.model
        if (entry.endpoint in ("create", "get_policy") and model and entry.region in REGIONS
                and model not in REGIONS[entry.region].models
                and any(model in r.models for r in REGIONS.values())):
            groups.setdefault((entry.key_id, entry.region, model), []).append(entry)
    found = []
    for (_, region, model), entries in groups.items():
        home = next(r.name for r in REGIONS.values() if model in r.models)
        found.append(_finding(observed, "wrong-region-model",
                              f"{_n(len(entries), 'request')} for {model} in {region}; it exists in "
                              f"{home} only", entries[0], requests=entries, model=model))
    return found


@_rule("sync-call", INFO, "submitted without X-DashScope-Async: enable",
       "Video synthesis only runs as an asynchronous task: without the header the real service "
       "answers 403 AccessDenied \"current user api does not support synchronous calls\".",
       "Send X-DashScope-Async: enable on every create (the SDK does), then poll the task.")
def _sync_call(observed: Observed, th: Thresholds) -> list[Finding]:
    groups: dict[str | None, list[Entry]] = {}
    for entry in observed.creates:
        if entry.async_header is False:
            groups.setdefault(entry.key_id, []).append(entry)
    return [_finding(observed, "sync-call",
                     f"{_n(len(entries), 'create')} without X-DashScope-Async: enable",
                     entries[0], requests=entries) for entries in groups.values()]
