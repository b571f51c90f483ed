"""Synthetic exporter series for promtool tests (minute resolution)."""
import datetime

JOB = 'idauth-exporter'
RATES = {'online': (0.98, 0.97), 'interruption': (0.75, 0.8), 'offline': (0.04, 0.31)}
STATES = ['online', 'interruption', 'offline', 'unknown']
MAX_AGE = 1800


def fmt(v):
    if v is None:
        return '_'
    if v == 'stale':
        return 'stale'
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return repr(v) if isinstance(v, float) else str(v)


def compress(vals):
    """promtool expanding notation: runs of equal values and arithmetic runs."""
    out, i, n = [], 0, len(vals)
    while i < n:
        v = vals[i]
        j = i
        while j + 1 < n and vals[j + 1] == v:
            j += 1
        if j > i and v is None:
            out.append('_x%d' % (j - i + 1))
            i = j + 1
            continue
        if j > i and v == 'stale':
            out.extend(['stale'] * (j - i + 1))
            i = j + 1
            continue
        if j > i:
            out.append('%sx%d' % (fmt(v), j - i))
            i = j + 1
            continue
        # arithmetic run of numbers
        if isinstance(v, (int, float)) and i + 2 < n and all(isinstance(x, (int, float)) for x in vals[i:i + 3]):
            d = vals[i + 1] - v
            j = i + 1
            while j + 1 < n and isinstance(vals[j + 1], (int, float)) and vals[j + 1] - vals[j] == d:
                j += 1
            if j - i >= 2 and d != 0:
                out.append('%s%s%sx%d' % (fmt(v), '+' if d > 0 else '-', fmt(abs(d)), j - i))
                i = j + 1
                continue
        out.append(fmt(v))
        i += 1
    return ' '.join(out)


class Provider:
    """Smile ID's checks: one every 10 minutes (at minute 10k), state per check.
    `skew`: seconds the provider adds to the time it stamps on every check (3600: a clock
    stamping local time as UTC, an hour ahead); `stamps`: {k: the time stamped on check k}
    for single wrong stamps (a response dated 2100)."""

    def __init__(self, states, rates=None, skew=0, stamps=None):
        # states: list indexed by k (check at minute 10k)
        self.states = states
        self.rates = rates or {}
        self.skew = skew
        self.stamps = stamps or {}

    def check_at(self, minute):
        k = minute // 10
        k = min(k, len(self.states) - 1)
        st = self.states[k]
        r = self.rates.get(k, RATES.get(st))
        return self.stamps.get(k, k * 600 + self.skew), st, r


class Replica:
    """One exporter process (an `instance`) scraped every minute from `start` to `end`
    (exclusive). `polls`: minutes at which a poll result is visible; `fail`: set of poll
    minutes that fail (reason); `down`: minutes where the target is scraped with up=0
    (no other series); `absent`: minutes with no series at all (not even up).
    `store`: whether the process keeps its on-disk store across a restart (`down`): with
    it, the restarted process serves what it knew (its last poll result while fresh, and
    the since of its run); without it, it starts with nothing, as a new pod does.
    `scraped_from`: the process runs (and polls) from `start`, but Prometheus has its
    series only from this minute (a Prometheus started, or having lost its data, later).
    `clamps`: the exporter bounds the provider's last_checked (and so its since) by the
    poll that brought it, as it does now; False models an older exporter that serves the
    provider's stamp as it came. `labels`: more target labels (cluster, ...). `pairs_until`:
    {pair: minute} from which the replica no longer serves the pair (removed from its
    configuration by a reload); `pairs_from`: {pair: minute} from which it serves the pair
    (discovered, or added by a reload)."""

    def __init__(self, instance, start, end, polls=None, fail=None, down=(), absent=(),
                 stalled_from=None, counter_base=0, store=False, scraped_from=None,
                 clamps=True, labels=None, pairs_until=None, pairs_from=None):
        self.instance, self.start, self.end = instance, start, end
        self.store = store
        self.clamps = clamps
        self.extra = labels or {}
        self.pairs_until = pairs_until or {}
        self.pairs_from = pairs_from or {}
        self.scraped_from = scraped_from if scraped_from is not None else start
        self.polls = polls if polls is not None else [m for m in range(start, end) if m % 10 == 1]
        self.fail = fail or {}
        self.down, self.absent = set(down), set(absent)
        self.stalled_from = stalled_from
        self.counter_base = counter_base

    def labels(self, **kw):
        d = {'job': JOB, 'instance': self.instance}
        d.update(self.extra)
        d.update(kw)
        return d


def series_for(replica, provider, pairs, length):
    """Returns {series selector: [values per minute 0..length-1]}."""
    out = {}

    def put(name, labels, m, v):
        key = name + '{' + ','.join('%s="%s"' % (k, v_) for k, v_ in labels.items()) + '}'
        out.setdefault(key, [None] * length)[m] = v

    r = replica
    for (country, id_type) in pairs:
        prov = provider[(country, id_type)] if isinstance(provider, dict) else provider
        data = None  # (checked, state, rates)
        last_ok_poll = None
        since = None  # the start of the current run of the observed state, provider time
        polls = fails = 0
        # The exporter serves every reason from 0; the scenarios show those they use.
        # A provider state of None: the provider has no data for the pair (`no_data`).
        used = set(r.fail.values()) | ({'no_data'} if None in prov.states else set())
        reasons = ['timeout', 'unauthorized'] + sorted(used - {'timeout', 'unauthorized'})
        fails_by = {k: 0 for k in reasons}
        last_success = None
        until = r.pairs_until.get((country, id_type), length)
        since_minute = r.pairs_from.get((country, id_type), 0)
        for m in range(length):
            if m < r.start or m >= r.end or m in r.absent or m >= until or m < since_minute:
                continue
            if m in r.down:  # the process is dead: it restarts with its store, or with nothing
                if not r.store:
                    data = last_ok_poll = since = None
                last_success = None
                polls = 0
                fails_by = {k: 0 for k in fails_by}
                continue
            if m in r.polls and (r.stalled_from is None or m < r.stalled_from):
                polls += 1
                reason = r.fail.get(m) or (None if prov.check_at(m)[1] is not None else 'no_data')
                if reason:
                    fails += 1
                    fails_by[reason] = fails_by.get(reason, 0) + 1
                    last_success = 0
                else:
                    new = prov.check_at(m)
                    # The exporter takes a last_checked later than its poll as the poll's
                    # time (an older one does not).
                    checked = min(new[0], m * 60) if r.clamps else new[0]
                    new = (checked,) + new[1:]
                    # The run goes on while the state is the same and the data stayed fresh
                    # in between (no gap longer than max_data_age); otherwise it starts at
                    # this check's last_checked.
                    if not (data is not None and data[1] == new[1] and (m - last_ok_poll) * 60 <= MAX_AGE):
                        since = new[0]
                    data = new
                    last_ok_poll = m
                    last_success = 1
            if m < r.scraped_from:
                continue
            lab = r.labels(country=country, id_type=id_type)
            # Fresh while the check is at most max_data_age old. The exporter counts from its
            # poll, a minute after the check when on time, so it turns unknown a minute later
            # than this; kept on the check so that the scenarios' minutes stay as they were.
            fresh = data is not None and m * 60 - min(data[0], last_ok_poll * 60) <= MAX_AGE
            state = data[1] if fresh else 'unknown'
            if data is not None:
                # Stale: since when the data went stale (last success + max_data_age).
                put('idauth_state_since_timestamp_seconds', lab, m, since if fresh else last_ok_poll * 60 + MAX_AGE)
            for s in STATES:
                put('idauth_state', dict(lab, state=s), m, 1 if s == state else 0)
            if fresh and data[2]:
                put('idauth_success_rate_10m', lab, m, data[2][0])
                put('idauth_success_rate_1h', lab, m, data[2][1])
            if data is not None:
                put('idauth_last_checked_timestamp_seconds', lab, m, data[0])
                put('idauth_last_poll_success_timestamp_seconds', lab, m, last_ok_poll * 60)
            if last_success is not None:
                put('idauth_poll_success', lab, m, last_success)
            put('idauth_polls_total', lab, m, r.counter_base + polls)
            for reason, n in fails_by.items():
                put('idauth_poll_failures_total', dict(lab, reason=reason), m, n)
    # The heartbeat: the start of the last poll cycle, the process's start until then
    # (a restart sets it to the restart).
    last_cycle = None
    for m in range(length):
        if m < r.start or m >= r.end or m in r.absent:
            continue
        if m in r.down:
            last_cycle = None
        elif m in r.polls and (r.stalled_from is None or m < r.stalled_from):
            last_cycle = m
        elif last_cycle is None:
            last_cycle = m
        if m < r.scraped_from:
            continue
        put('up', r.labels(), m, 0 if m in r.down else 1)
        if m in r.down:
            continue
        if last_cycle is not None:
            put('idauth_poll_cycle_last_run_timestamp_seconds', r.labels(), m, last_cycle * 60)
    return out


def add_stale(replica, out, length):
    r = replica
    gone = lambda m: m < r.scraped_from or m >= r.end or m in r.absent
    for key, vals in out.items():
        is_up = key.startswith('up{')
        until = min([m for (c, t), m in r.pairs_until.items()
                     if 'country="%s",id_type="%s"' % (c, t) in key] or [length])
        for m in range(1, length):
            was = vals[m - 1] is not None and vals[m - 1] != 'stale'
            if was and vals[m] is None and (gone(m) or m >= until or (m in r.down and not is_up)):
                vals[m] = 'stale'


def input_series(replicas, provider, pairs=(('NG', 'BVN'),), length=60, only=None):
    allv = {}
    for r in replicas:
        o = series_for(r, provider, pairs, length)
        add_stale(r, o, length)
        for k, v in o.items():
            if k in allv:  # the same instance restarted: merge
                allv[k] = [b if b is not None else a for a, b in zip(allv[k], v)]
            else:
                allv[k] = v
    lines = []
    for key, vals in allv.items():
        name = key.split('{')[0]
        if only and name not in only:
            continue
        # trim trailing missing values
        while vals and vals[-1] is None:
            vals = vals[:-1]
        lines.append("      - series: '%s'\n        values: '%s'" % (key, compress(vals)))
    return '\n'.join(lines)


def ts(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S +0000 UTC')


def pct(v):
    if v is None:
        return 'unknown'
    s = ('%g' % (v * 100))
    return s + '%'
