from gen import *
import sys
ON, INT, OFF = 'online', 'interruption', 'offline'
NG = (('NG', 'BVN'),)
T = []
out = sys.argv[1]

# --- two replicas, one outage ---
p = Provider([ON] * 2 + [OFF] * 4 + [ON] * 4)
t = Test('''Two replicas (a polls at minute 10k+1, b at 10k+2) watch one outage: the provider's
checks at 20m..50m are offline, 60m onwards online again. Exactly one IdAuthorityOffline,
without instance, with one description; it fires one evaluation after the second offline
poll (at 32m at the latest: 11 minutes after the first) and resolves one evaluation after
the second online poll (recoveryConfirmationPolls: 2), at 72m.''',
         [Replica('a:9877', 0, 80), Replica('b:9877', 0, 80, polls=[m for m in range(80) if m % 10 == 2])], p, 80)
t.expect('IdAuthorityOffline', [21, 22, 30], note='One offline poll (21m), then the second (31m) is seen by the rules; no page yet.')
t.expect('IdAuthorityOffline', [32, 33, 45, 60], offline(1200), note='One alert for both replicas, "since" the first offline check (20m).')
t.expect('IdAuthorityOffline', [62, 70], offline(1200, r=RATES['online']), note='One online check (seen at 61m) is not yet a recovery.')
t.expect('IdAuthorityOffline', [72, 73, 79], note='a saw the second online check at 71m: resolved from 72m.')
t.expect('IdAuthorityDegraded', [45], note='Offline is not also reported as degraded.')
t.promql('country_id_type:idauth_state_since:timestamp_seconds', 40,
         [('country_id_type:idauth_state_since:timestamp_seconds{job="idauth-exporter",country="NG",id_type="BVN",state="offline"}', 1200)],
         note='One "since" series per authority, in provider time, whatever the replica.')
T.append(t)

# --- pod replaced mid-outage ---
p = Provider([ON] * 2 + [OFF] * 6 + [ON] * 3)
t = Test('''A rollout mid-outage: pod a is replaced by pod c (a's series end at 45m, c's start at
46m and serve unknown until c's first poll at 51m). The page stays open with the same
"since" (rates unknown while nobody has fresh data) and resolves after c sees the second
online check (91m).''',
         [Replica('a:9877', 0, 45), Replica('c:9877', 46, 100)], p, 100)
t.expect('IdAuthorityOffline', [32, 44], offline(1200))
t.expect('IdAuthorityOffline', [47, 49], offline(1200, r=None), note='Nobody serves fresh data: the page stays, rates unknown.')
t.expect('IdAuthorityOffline', [52, 70, 80], offline(1200))
t.expect('IdAuthorityOffline', [82, 90], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [92, 99])
T.append(t)

# two replicas, one replaced
t = Test('''Two replicas, a replaced by c mid-outage while b keeps watching: one alert throughout.''',
         [Replica('a:9877', 0, 45), Replica('c:9877', 47, 100), Replica('b:9877', 0, 100, polls=[m for m in range(100) if m % 10 == 2])], p, 100)
t.expect('IdAuthorityOffline', [32, 45, 47, 50, 55, 80], offline(1200))
t.expect('IdAuthorityOffline', [82, 90], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [92])
T.append(t)

# --- exporter killed mid-outage (static target: up 0) ---
p = Provider([ON] * 2 + [OFF] * 7 + [ON] * 3)
t = Test('''The only replica is killed mid-outage: scrapes fail from 35m to 54m (up 0, every other
series stale); it restarts at 55m with fresh counters, serving unknown until its poll at 61m.
The page stays open with the same "since"; IdAuthExporterDown takes over the watching at 45m;
the page resolves only after the second online check is seen (101m).''',
         [Replica('a:9877', 0, 120, down=range(35, 55))], p, 120)
t.expect('IdAuthorityOffline', [32, 34], offline(1200))
t.expect('IdAuthorityOffline', [40, 45, 54, 55, 60], offline(1200, r=None))
t.expect('IdAuthorityOffline', [62, 90], offline(1200))
t.expect('IdAuthorityOffline', [92, 100], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [102, 110])
t.expect('IdAuthExporterDown', [44])
t.expect('IdAuthExporterDown', [45, 54], down())
t.expect('IdAuthExporterDown', [55])
T.append(t)

# --- exporter killed mid-outage (target gone: no up at all) ---
t = Test('''The same under Kubernetes: the pod and its target disappear for 20 minutes (no series
at all, not even up) and a new pod d comes back at 55m.''',
         [Replica('a:9877', 0, 35), Replica('d:9877', 55, 120)], p, 120)
t.expect('IdAuthorityOffline', [32, 35, 45, 54, 55, 60], *[])  # placeholder replaced below
t.alerts.clear()
t.expect('IdAuthorityOffline', [32, 34], offline(1200))
t.expect('IdAuthorityOffline', [40, 45, 54, 60], offline(1200, r=None))
t.expect('IdAuthorityOffline', [62, 90], offline(1200))
t.expect('IdAuthorityOffline', [92], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [102])
t.expect('IdAuthExporterDown', [45], down(), note='absent(up) for 10 minutes.')
T.append(t)

# --- nobody watching for longer than max_data_age mid-outage ---
p = Provider([ON] * 2 + [OFF] * 10 + [ON] * 4)
t = Test('''The only replica is down from 35m to 84m, longer than max_data_age: the dashboard's state
code turns unknown meanwhile, but the authority never changed as far as anybody observed.
The page stays open; after the recovery (121m, 131m) IdAuthorityFlapping does not fire, as
nobody watching is not a change of state.''',
         [Replica('a:9877', 0, 150, down=range(35, 85))], p, 150)
t.expect('IdAuthorityOffline', [32], offline(1200))
t.expect('IdAuthorityOffline', [50, 84], offline(1200, r=None))
t.expect('IdAuthorityOffline', [92, 120], offline(1200))
t.expect('IdAuthorityOffline', [122, 130], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [132, 149])
t.expect('IdAuthorityFlapping', [80, 122, 149])
T.append(t)

# --- data going stale mid-outage ---
p = Provider([ON] * 2 + [OFF] * 7 + [ON] * 3)
fails = {m: 'timeout' for m in range(41, 80)}
t = Test('''Polls fail (timeout) from 41m to 71m: the exporter serves the offline check of 30m until
it is older than max_data_age (61m), then unknown; last_checked stays at 30m. The page stays
open with the same "since"; IdAuthorityStatusUnknown joins at 71m (polls failing 30m + 10m).
Polls succeed again at 81m (offline), and the online checks of 90m and 100m resolve it.''',
         [Replica('a:9877', 0, 110, fail=fails)], p, 110)
t.expect('IdAuthorityOffline', [32, 41, 60], offline(1200))
t.expect('IdAuthorityOffline', [67, 70, 71, 80], offline(1200, r=None), note='State unknown, rates gone: still offline since 20m.')
t.expect('IdAuthorityOffline', [82, 90], offline(1200))
t.expect('IdAuthorityOffline', [92, 100], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [102])
t.expect('IdAuthorityStatusUnknown', [60, 69])
t.expect('IdAuthorityStatusUnknown', [72, 80], unknown(1800))
t.expect('IdAuthorityStatusUnknown', [84])
T.append(t)

# --- since across replicas, restarts and runs ---
SINCE = 'country_id_type:idauth_state_since:timestamp_seconds'
NOW = 'country_id_type_state:idauth_state_since_timestamp_seconds:min'
RAW = 'idauth_state_since_timestamp_seconds'
L = 'job="idauth-exporter",country="NG",id_type="BVN"'


def since_of(metric, v, state=None, instance=None):
    labels = L + (',state="%s"' % state if state else '') + (',instance="%s"' % instance if instance else '')
    return ('%s{%s}' % (metric, labels), v)


p = Provider([ON] * 2 + [OFF] * 8 + [ON] * 3)
t = Test("""A replica without a store: a restarts at 35m having lost its store (a new emptyDir) and,
from its poll at 41m, reports the outage as offline since 40m; b (with its store) still says
20m, and the earliest wins. b then dies from 50m to 71m, so that only a, with its later since,
observes: the recorded since stays at 20m (remembered), and so does the page's description.
b comes back at 72m with its store (its run unbroken: 30 minutes between its polls). One
page from 32m to the second online check, never resolved nor fired again in between.""",
         [Replica('a:9877', 0, 130, down=range(35, 38)),
          Replica('b:9877', 0, 130, polls=[m for m in range(130) if m % 10 == 2], down=range(50, 72), store=True)], p, 130)
t.expect('IdAuthorityOffline', [30])
t.expect('IdAuthorityOffline', [32, 35, 36, 38, 40, 42, 45, 50, 51, 55, 60, 65, 71, 72, 73, 80, 90, 100], offline(1200),
         note='Whichever replicas observe, the alert keeps the earliest since: 20m.')
t.expect('IdAuthorityOffline', [102, 110], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [112, 129])
t.promql(RAW, 45, [since_of(RAW, 2400, instance='a:9877'), since_of(RAW, 1200, instance='b:9877')],
         note='The replicas disagree: a lost its store.')
t.promql(NOW, 45, [since_of(NOW, 1200, 'offline')])
t.promql(NOW, 60, [since_of(NOW, 2400, 'offline')], note='b is down: only a observes, with its later since ...')
t.promql(SINCE, 60, [since_of(SINCE, 1200, 'offline')], note='... and the recorded since does not move.')
t.promql(SINCE, 80, [since_of(SINCE, 1200, 'offline')])
t.promql(SINCE, 105, [since_of(SINCE, 6000, 'online')])
T.append(t)

t = Test("""Restart mid-outage with the store: the only replica is down from 35m to 50m and comes back
with its store at its poll of 51m. Its run is unbroken (20 minutes between its polls), so it
reports the same since (20m). The page stays open throughout, once, with the same since
(rates unknown while nobody serves data).""",
         [Replica('a:9877', 0, 120, down=range(35, 51), store=True)], p, 120)
t.expect('IdAuthorityOffline', [32, 34], offline(1200))
t.expect('IdAuthorityOffline', [36, 40, 45, 50], offline(1200, r=None))
t.expect('IdAuthorityOffline', [52, 60, 80, 100], offline(1200))
t.expect('IdAuthorityOffline', [102, 110], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [112, 119])
t.promql(RAW, 52, [since_of(RAW, 1200, instance='a:9877')])
t.promql(SINCE, 45, [since_of(SINCE, 1200, 'offline')])
t.promql(SINCE, 52, [since_of(SINCE, 1200, 'offline')])
T.append(t)

t = Test("""A rolling restart mid-outage with stores (a StatefulSet with a volume per replica): a is down
from 35m to 50m, b from 53m to 61m; each comes back with its store at its next poll and
reports the same since. Somebody always has fresh data: the page and its description do not
change at any minute.""",
         [Replica('a:9877', 0, 120, down=range(35, 51), store=True),
          Replica('b:9877', 0, 120, polls=[m for m in range(120) if m % 10 == 2], down=range(53, 62), store=True)], p, 120)
t.expect('IdAuthorityOffline', [32, 35, 36, 40, 45, 50, 51, 52, 53, 54, 56, 60, 61, 62, 63, 70, 90, 100], offline(1200))
t.expect('IdAuthorityOffline', [102, 110], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [112, 119])
t.promql(RAW, 57, [since_of(RAW, 1200, instance='a:9877')])
t.promql(NOW, 57, [since_of(NOW, 1200, 'offline')])
T.append(t)

p = Provider([ON] * 2 + [OFF] * 3 + [ON] * 6 + [OFF] * 4 + [ON] * 3)
t = Test("""A second outage later in the day: offline 20m-40m, online 50m-100m, offline again from 110m.
The second page is since 110m, the start of the new run, not the 20m of the earlier one.""",
         [Replica('a:9877', 0, 170), Replica('b:9877', 0, 170, polls=[m for m in range(170) if m % 10 == 2])], p, 170)
t.expect('IdAuthorityOffline', [32, 50], offline(1200))
t.expect('IdAuthorityOffline', [52, 60], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [62, 100, 111, 112, 120])
t.expect('IdAuthorityOffline', [122, 130, 150], offline(6600), note='The second outage: since its own first check.')
t.expect('IdAuthorityOffline', [152, 160], offline(6600, r=RATES['online']))
t.expect('IdAuthorityOffline', [162, 169])
t.promql(SINCE, 45, [since_of(SINCE, 1200, 'offline')])
t.promql(SINCE, 80, [since_of(SINCE, 3000, 'online')])
t.promql(SINCE, 115, [since_of(SINCE, 6600, 'offline')])
t.promql(SINCE, 145, [since_of(SINCE, 6600, 'offline')])
t.promql(SINCE, 160, [since_of(SINCE, 9000, 'online')])
T.append(t)

p = Provider([ON] * 2 + [OFF] * 8 + [ON] * 3)
t = Test("""Prometheus newer than the outage (started, or its data lost, at 45m): the replica has watched
since 0m and reports the outage as offline since 20m from its store. The page fires at the
first evaluation that sees it (46m), since 20m, which Prometheus alone could not know.""",
         [Replica('a:9877', 0, 120, scraped_from=45)], p, 120)
t.expect('IdAuthorityOffline', [44])
t.expect('IdAuthorityOffline', [46, 60, 100], offline(1200))
t.expect('IdAuthorityOffline', [102, 110], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [112])
t.promql(SINCE, 50, [since_of(SINCE, 1200, 'offline')])
T.append(t)

# --- one-poll blip ---
p = Provider([ON] * 2 + [OFF] + [ON] * 5)
t = Test('''A one-poll blip: the check of 20m is offline, those before and after online; the next poll
lands late (at 33m instead of 31m). No page at any minute.''',
         [Replica('a:9877', 0, 60, polls=[1, 11, 21, 33, 41, 51])], p, 60)
t.expect('IdAuthorityOffline', range(20, 40))
T.append(t)

t = Test('''The same blip seen by two replicas whose next polls land 1 and 2 minutes late.''',
         [Replica('a:9877', 0, 60, polls=[1, 11, 21, 32, 41, 51]), Replica('b:9877', 0, 60, polls=[2, 12, 22, 33, 42, 52])], p, 60)
t.expect('IdAuthorityOffline', range(20, 40))
T.append(t)

# --- two offline polls, the second late ---
p = Provider([ON] * 2 + [OFF] * 3 + [ON] * 2)
t = Test('''Two consecutive offline polls, the second landing 2 minutes late (33m): the page comes
by 34m, 13 minutes after the first offline poll.''',
         [Replica('a:9877', 0, 70, polls=[1, 11, 21, 33, 41, 51, 61])], p, 70)
t.expect('IdAuthorityOffline', [21, 30, 32])
t.expect('IdAuthorityOffline', [34, 50], offline(1200))
t.expect('IdAuthorityOffline', [52, 60], offline(1200, r=RATES['online']))
t.expect('IdAuthorityOffline', [62])
T.append(t)

# --- recovery into interruption; Degraded ---
p = Provider([ON] * 2 + [OFF] * 2 + [INT] * 4 + [ON] * 2)
t = Test('''Offline, then recovering through interruption: the offline page resolves one evaluation
after the second interruption check is seen (51m); IdAuthorityDegraded fires only after three
interruption polls (40m, 50m, 60m: at 62m) and resolves after the online one.''',
         [Replica('a:9877', 0, 100)], p, 100)
t.expect('IdAuthorityOffline', [32, 40], offline(1200))
t.expect('IdAuthorityOffline', [42, 50], offline(1200, r=RATES['interruption']))
t.expect('IdAuthorityOffline', [52, 60])
t.expect('IdAuthorityDegraded', [42, 52, 60])
t.expect('IdAuthorityDegraded', [62, 79], degraded(2400))
t.expect('IdAuthorityDegraded', [82])
T.append(t)

# --- flapping ---
p = Provider([ON, ON, OFF, ON, OFF, ON, OFF, ON, ON, ON, ON, ON, ON, ON, ON, ON, ON, ON, ON, ON, ON])
t = Test('''Flapping: online and offline alternate at every check from 20m to 70m. The fourth change
of state (seen at 51m) fires IdAuthorityFlapping; it clears when the changes leave the 2h window.
A single-poll offline never pages, however often.''',
         [Replica('a:9877', 0, 200)], p, 200)
t.expect('IdAuthorityFlapping', [30, 50])
t.expect('IdAuthorityFlapping', [52], flapping(4, RATES['online']))
t.expect('IdAuthorityFlapping', [80], flapping(6, RATES['online']))
t.expect('IdAuthorityFlapping', [175])
t.expect('IdAuthorityOffline', range(20, 80, 3))
T.append(t)

# --- StatusUnknown ---
p = Provider([ON] * 12)
t = Test('''Status unknown: every poll of both replicas fails from 11m. The data of the check at 0m is
older than max_data_age from 31m; IdAuthorityStatusUnknown fires 10 minutes later (41m),
40 minutes after the last good poll. No offline page: unknown is not offline.''',
         [Replica('a:9877', 0, 60, fail={m: 'timeout' for m in range(11, 60)}),
          Replica('b:9877', 0, 60, polls=[m for m in range(60) if m % 10 == 2], fail={m: 'timeout' for m in range(12, 60)})], p, 60)
t.expect('IdAuthorityStatusUnknown', [31, 39])
t.expect('IdAuthorityStatusUnknown', [42, 59], unknown(0))
t.expect('IdAuthorityOffline', [45])
T.append(t)

t = Test('''Only replica a's polls fail; b still has fresh data: no IdAuthorityStatusUnknown.''',
         [Replica('a:9877', 0, 60, fail={m: 'timeout' for m in range(11, 60)}),
          Replica('b:9877', 0, 60, polls=[m for m in range(60) if m % 10 == 2])], p, 60)
t.expect('IdAuthorityStatusUnknown', [41, 59])
T.append(t)

# --- DataStale ---
p = Provider([ON] * 3)  # the provider's last check is at 20m, whatever we ask later
t = Test('''Provider data stale: polls succeed but the provider's last check stays at 20m. It is older
than 30 minutes from 51m; IdAuthorityDataStale fires after 5 more minutes (56m).''',
         [Replica('a:9877', 0, 70)], p, 70)
t.expect('IdAuthorityDataStale', [50, 55])
t.expect('IdAuthorityDataStale', [57], stale(57 * 60 - 1200))
T.append(t)

t = Test('''Fresh provider data: no IdAuthorityDataStale.''', [Replica('a:9877', 0, 70)], Provider([ON] * 8), 70)
t.expect('IdAuthorityDataStale', [56, 69])
t.expect('IdAuthorityStatusUnknown', [69])
t.expect('IdAuthorityFlapping', [69])
T.append(t)

# --- Paging v2: one incident, one page ---
p = Provider([ON, ON] + [OFF, OFF, ON] * 4 + [ON] * 3)
t = Test("""Each dip re-paged: offline for two checks, online for one, four times over two hours (offline
20m-30m, 50m-60m, 80m-90m, 110m-120m; online 40m, 70m, 100m, then from 130m). One incident, one
page: it fires once at 32m, since 20m, and stays firing at every minute (a single online check
is not a recovery: recoveryConfirmationPolls 2) until the second online check in a row (140m,
seen at 141m). IdAuthorityFlapping fires too (the Alertmanager example inhibits it under the page).""",
         [Replica('a:9877', 0, 150)], p, 150)
t.expect('IdAuthorityOffline', [30])
t.expect('IdAuthorityOffline', [32, 40, 55, 62, 85, 112, 125], offline(1200))
t.expect('IdAuthorityOffline', [45, 75, 105, 134, 140], offline(1200, r=RATES['online']),
         note='Between the dips the authority is online for one check: the page stays, since 20m.')
t.expect('IdAuthorityOffline', [142, 149])
t.promql('count_over_time(ALERTS{alertname="IdAuthorityOffline", alertstate="firing"}[107m])', 140,
         [('{alertname="IdAuthorityOffline",alertstate="firing",country="NG",id_type="BVN",job="idauth-exporter",severity="critical"}', 108)],
         note='Firing at every one of the 108 minutes from 33m to 140m: never resolved in between ...')
t.promql('changes(ALERTS_FOR_STATE{alertname="IdAuthorityOffline"}[107m])', 140,
         [('{alertname="IdAuthorityOffline",country="NG",id_type="BVN",job="idauth-exporter",severity="critical"}', 0)],
         note='... and never started again: one page.')
T.append(t)

# --- a pair removed from the configuration while its page is open ---
P2 = (('NG', 'BVN'), ('NG', 'NIN_V2'))
prov = {('NG', 'BVN'): Provider([ON] * 2 + [OFF] * 20), ('NG', 'NIN_V2'): Provider([ON] * 22)}
gone = {('NG', 'BVN'): 50}
t = Test("""A pair removed from the configuration (a reload at 50m) while its page is open: NG BVN has been
offline since 20m; from 50m neither replica serves it, while both still serve NG NIN_V2. A few
minutes later the page's `unwatched` annotation says that it is about to end because the pair is
no longer watched; after 15 minutes (65m) the rules forget the pair and the page resolves (66m),
carrying that annotation (the annotations of its last firing evaluation), not as a recovery.
IdAuthorityNoLongerWatched (info) says so until an hour after the pair was last served.""",
         [Replica('a:9877', 0, 130, pairs_until=gone),
          Replica('b:9877', 0, 130, polls=[m for m in range(130) if m % 10 == 2], pairs_until=gone)], prov, 130, pairs=P2)
t.expect('IdAuthorityOffline', [32, 45, 49], offline(1200))
t.expect('IdAuthorityOffline', [51], offline(1200, r=None), note='The reload at 50m: nobody serves NG BVN any more.')
t.expect('IdAuthorityOffline', [54, 60, 64], offline(1200, r=None, unwatched=True),
         note='Nobody serves the pair, the replicas serve others: the page says why it will end.')
t.expect('IdAuthorityOffline', [66, 80, 129], note='Ended within 16 minutes of the removal, and never fires again.')
t.expect('IdAuthorityNoLongerWatched', [50, 63])
t.expect('IdAuthorityNoLongerWatched', [66, 90, 108], no_longer_watched())
t.expect('IdAuthorityNoLongerWatched', [111, 129])
t.expect('IdAuthorityStatusUnknown', [70, 100])
t.promql('country_id_type:idauth_state:code', 70,
         [('country_id_type:idauth_state:code{job="idauth-exporter",country="NG",id_type="NIN_V2"}', 0)],
         note='The rules forgot NG BVN: the dashboard no longer shows it.')
T.append(t)

t = Test("""Not a removal: every replica dies (scrapes fail) from 50m to 90m while NG BVN is offline. Nobody
serves the pair, but nobody serves any other pair either: the page stays open, without the
`unwatched` annotation, and IdAuthorityNoLongerWatched does not fire.""",
         [Replica('a:9877', 0, 110, down=range(50, 90)),
          Replica('b:9877', 0, 110, polls=[m for m in range(110) if m % 10 == 2], down=range(50, 90))], prov, 110, pairs=P2)
t.expect('IdAuthorityOffline', [55, 70, 89], offline(1200, r=None))
t.expect('IdAuthorityOffline', [95, 109], offline(1200))
t.expect('IdAuthorityNoLongerWatched', [60, 75, 89, 95])
T.append(t)

# --- the provider's clock ---
p = Provider([ON] * 2 + [OFF] * 4 + [ON] * 4, skew=3600)
for clamps, who in ((True, 'The exporter clamps each last_checked to the poll that brought it, so the rules see poll\ntimes'),
                    (False, 'An older exporter that does not clamp serves the stamps as they came (and a since an hour\nahead); the rules bound each observation, and each since, by the replica\'s poll')):
    t = Test("""The provider stamps local time as UTC: every last_checked is an hour ahead. %s. One page, at
the second offline poll (32m), since the first offline poll (21m), resolved after the second
online poll (72m): not delayed by the hour, and not twice.""" % who,
             [Replica('a:9877', 0, 90, clamps=clamps),
              Replica('b:9877', 0, 90, polls=[m for m in range(90) if m % 10 == 2], clamps=clamps)], p, 90)
    t.expect('IdAuthorityOffline', [21, 22, 30])
    t.expect('IdAuthorityOffline', [32, 45, 60], offline(1260))
    t.expect('IdAuthorityOffline', [62, 70], offline(1260, r=RATES['online']))
    t.expect('IdAuthorityOffline', [72, 89])
    t.expect('IdAuthorityDataStale', [60, 89])
    T.append(t)

p = Provider([ON] * 2 + [OFF] * 4 + [ON] * 4, stamps={1: 4102444800})
for clamps, who in ((True, 'the exporter takes it as the time of its poll (11m)'),
                    (False, 'an older exporter serves it as it came; the rules take the poll time instead')):
    t = Test("""One response dated 2100: the online check of 10m says last_checked 2100-01-01; %s.
It must not hold the pair online for a day: the outage from 20m pages at 32m as usual.""" % who,
             [Replica('a:9877', 0, 80, clamps=clamps)], p, 80)
    t.expect('IdAuthorityOffline', [30])
    t.expect('IdAuthorityOffline', [32, 60], offline(1200))
    t.expect('IdAuthorityOffline', [72, 79])
    t.promql('country_id_type:idauth_state:latest', 25,
             [('country_id_type:idauth_state:latest{job="idauth-exporter",country="NG",id_type="BVN",state="offline"}', 1200)])
    T.append(t)

# --- clusters: labels the user adds survive aggregation ---
EU, US = {'cluster': 'eu'}, {'cluster': 'us'}
p = Provider([ON] * 2 + [OFF] * 4 + [ON] * 4)
t = Test("""Two clusters watch the same pair, and one global ruler (Thanos, Mimir) evaluates the rules over
both: the series carry a `cluster` label the mixin's default _config does not name. The labels
users add survive aggregation (the rules drop only replicaLabels): one page per cluster, each
with its own description. Cluster us started watching at 25m, so it saw the outage from the
check of 30m: its page comes later and says so.""",
         [Replica('a:9877', 0, 90, labels=EU), Replica('b:9877', 0, 90, polls=[m for m in range(90) if m % 10 == 2], labels=EU),
          Replica('c:9877', 25, 90, labels=US), Replica('d:9877', 25, 90, polls=[m for m in range(90) if m % 10 == 2], labels=US)], p, 90)
t.expect('IdAuthorityOffline', [32, 40], offline(1200, extra=EU))
t.expect('IdAuthorityOffline', [42, 60], offline(1200, extra=EU), offline(1800, extra=US))
t.expect('IdAuthorityOffline', [72, 89])
T.append(t)

# --- a storm: six NG types offline at once, among 20 pairs ---
NG_TYPES = ['BVN', 'NIN_V2', 'NIN_SLIP', 'PHONE_NUMBER', 'BANK_ACCOUNT', 'DRIVERS_LICENSE']
OTHERS = [('GH', 'GHANA_CARD'), ('GH', 'PASSPORT'), ('GH', 'SSNIT'), ('GH', 'VOTER_ID'), ('KE', 'NATIONAL_ID'),
          ('KE', 'ALIEN_CARD'), ('KE', 'KRA_PIN'), ('KE', 'PASSPORT'), ('ZA', 'NATIONAL_ID'), ('ZA', 'NATIONAL_ID_NO_PHOTO'),
          ('UG', 'NATIONAL_ID_NO_PHOTO'), ('CI', 'CNI'), ('ZM', 'NRC'), ('TZ', 'NIN')]
PAIRS = tuple(('NG', x) for x in NG_TYPES) + tuple(OTHERS)
prov = {pair: Provider([ON] * 2 + [OFF] * 2) if pair[0] == 'NG' else Provider([ON] * 4) for pair in PAIRS}
t = Test("""A storm: six NG ID types go offline at once (the checks of 20m and 30m), among 20 pairs. Six
alerts, one per authority, each with its own description; the Alertmanager example's pager route
groups them by country into one incident (tests/alertmanager.rs).""",
         [Replica('a:9877', 0, 36)], prov, 36, pairs=PAIRS)
t.expect('IdAuthorityOffline', [30])
t.expect('IdAuthorityOffline', [32, 35], *[offline(1200, t=x) for x in NG_TYPES])
t.promql('count(country_id_type:idauth_state:code == 0)', 35, [('{}', 14)])
T.append(t)

write(out, '''# promtool test rules tests/authorities.yaml (from deploy/prometheus)
#
# The authority alerts on series shaped like the real exporter's: per replica and pair, four
# idauth_state series (exactly one is 1), the rates, last_checked (the provider's check time,
# stepping by 600 s at every poll), the since of the current run (the first check's time,
# kept across a restart only with the store; when the data went stale, for unknown),
# poll_success, polls/failures counters; per replica up
# and idauth_poll_cycle_last_run_timestamp_seconds. The provider checks every authority at
# minute 10k; a replica's poll of that check is scraped at 10k+1 (or later, when it lands
# late). A replica that stops, dies or is replaced ends its series with a stale marker, as
# Prometheus does. The alerts see the recording rules one evaluation late, as they would in
# a real Prometheus where the groups are evaluated independently.''', T)
