from gen import *
import sys
ON, OFF = 'online', 'offline'
T = []
p = Provider([ON] * 20)
B = lambda n, **kw: Replica('b:9877', 0, n, **dict({'polls': [m for m in range(n) if m % 10 == 2]}, **kw))

t = Test('''Both replicas die at 20m (scrapes fail, up 0): nobody watches. IdAuthExporterDown (critical)
fires after 10 minutes; no IdAuthExporterReplicaDown, since no replica is up. The cause speaks:
IdAuthExporterBlind does not, although no poll succeeds from 12m, neither while they are down
nor when they come back at 60m (without their stores) and wait for their first polls (61m, 62m).''',
         [Replica('a:9877', 0, 75, down=range(20, 60)), B(75, down=range(20, 60))], p, 75)
t.expect('IdAuthExporterDown', [0, 19, 29])
t.expect('IdAuthExporterDown', [31, 44, 59], down())
t.expect('IdAuthExporterDown', [61, 74])
t.expect('IdAuthExporterReplicaDown', [31, 44])
t.expect('IdAuthExporterBlind', [38, 45, 59, 60, 61, 62, 65, 74])
T.append(t)

t = Test('''Replica a dies at 20m while b keeps watching: IdAuthExporterReplicaDown (warning) for a,
no IdAuthExporterDown (its critical page, and its inhibitions, are for nobody watching).''',
         [Replica('a:9877', 0, 45, down=range(20, 45)), B(45)], p, 45)
t.expect('IdAuthExporterReplicaDown', [19, 29])
t.expect('IdAuthExporterReplicaDown', [31, 44], replica_down('a:9877'))
t.expect('IdAuthExporterDown', [31, 44])
T.append(t)

t = Test('''No exporter target at all (service discovery lost it): absent(up) fires IdAuthExporterDown.''',
         [], p, 20, extra_series="""      - series: 'up{job="prometheus",instance="localhost:9090"}'
        values: '1x20'""")
t.expect('IdAuthExporterDown', [9])
t.expect('IdAuthExporterDown', [11, 20], down())
T.append(t)

t = Test('''Both replicas stop polling (their schedulers hang; a's last cycle at 11m, b's at 2m) but
answer scrapes: IdAuthExporterStalled once the newest cycle is older than 25 minutes (37m).''',
         [Replica('a:9877', 0, 50, stalled_from=12), B(50, stalled_from=12)], p, 50)
t.expect('IdAuthExporterStalled', [20, 36])
t.expect('IdAuthExporterStalled', [38], stalled(38 * 60 - 660))
t.expect('IdAuthExporterReplicaStalled', [38, 45])
t.expect('IdAuthExporterBlind', [38, 45, 49], note='No successful poll either, but the stall is the cause: Blind is left out.')
T.append(t)

t = Test('''Only a stalls; b polls: IdAuthExporterReplicaStalled (warning) for a, after its for: of a poll
period (its last cycle at 11m: 25 minutes old at 37m, firing from 47m); no IdAuthExporterStalled.''',
         [Replica('a:9877', 0, 55, stalled_from=12), B(55)], p, 55)
t.expect('IdAuthExporterReplicaStalled', [20, 36, 38, 46])
t.expect('IdAuthExporterReplicaStalled', [48], replica_stalled('a:9877', 48 * 60 - 660))
t.expect('IdAuthExporterReplicaStalled', [54], replica_stalled('a:9877', 54 * 60 - 660))
t.expect('IdAuthExporterStalled', [38, 45])
T.append(t)

t = Test('''Every poll of replica a times out (two pairs); b's succeed: IdAuthExporterPollsFailing for a only.''',
         [Replica('a:9877', 0, 50, fail={m: 'timeout' for m in range(50)}), B(50)], p, 50,
         pairs=(('NG', 'BVN'), ('KE', 'NATIONAL_ID')))
t.expect('IdAuthExporterPollsFailing', [41, 49], polls_failing('a:9877', 1.0))
T.append(t)

t = Test('''Counter resets: replica a fails one poll in three, and is restarted at 35m (its counters start
again from 0). Neither the reset nor the restart fires IdAuthExporterPollsFailing.''',
         [Replica('a:9877', 0, 90, down=range(35, 38), fail={11: 'timeout', 41: 'timeout', 71: 'timeout'})], p, 90,
         pairs=(('NG', 'BVN'), ('KE', 'NATIONAL_ID')))
t.expect('IdAuthExporterPollsFailing', [31, 36, 38, 40, 45, 50, 55, 60, 70, 80, 89])
T.append(t)

t = Test('''The API key is revoked at 10m: every poll of both replicas (from 11m) is unauthorized.
Once no replica has had a successful poll within the look-back (15m),
IdAuthExporterUnauthorized pages a period and 2 minutes later (27m to 28m): two cycles
in a row were refused. The key is the cause, and the only one that speaks: not
IdAuthExporterBlind (no successful poll for 25 minutes from 27m), nor
IdAuthorityStatusUnknown for each pair (its data older than max_data_age from 31m).''',
         [Replica('a:9877', 0, 60, fail={m: 'unauthorized' for m in range(11, 60)}),
          B(60, fail={m: 'unauthorized' for m in range(12, 60)})], p, 60)
t.expect('IdAuthExporterUnauthorized', [10, 20, 25])
t.expect('IdAuthExporterUnauthorized', [29, 31, 44, 59], unauthorized())
t.expect('IdAuthExporterBlind', [29, 31, 44, 59])
t.expect('IdAuthorityStatusUnknown', [42, 50, 59])
T.append(t)

t = Test('''Only replica a's key is refused (a stale secret on one pod); b polls: no critical page.''',
         [Replica('a:9877', 0, 45, fail={m: 'unauthorized' for m in range(11, 45)}), B(45)], p, 45)
t.expect('IdAuthExporterUnauthorized', [31, 44])
T.append(t)



# --- Paging v2: nobody watching ---
fails = lambda start, n, reason: {m: reason for m in range(start, n)}
t = Test('''The provider's API is unreachable from both replicas from 11m (every poll fails: connect) while
Prometheus scrapes them fine. Nobody is watching: IdAuthExporterBlind (critical) pages once the
newest successful poll of any replica (b's at 2m) is 25 minutes old (28m), and stays.
Not Down, Stalled or Unauthorized: those causes are not it.''',
         [Replica('a:9877', 0, 60, fail=fails(11, 60, 'connect')), B(60, fail=fails(12, 60, 'connect'))], p, 60,
         pairs=(('NG', 'BVN'), ('KE', 'NATIONAL_ID')))
t.expect('IdAuthExporterBlind', [20, 26])
t.expect('IdAuthExporterBlind', [28], blind(28 * 60 - 120))
t.expect('IdAuthExporterBlind', [40], blind(40 * 60 - 120))
t.expect('IdAuthExporterBlind', [59], blind(59 * 60 - 120))
t.expect('IdAuthExporterDown', [40, 59])
t.expect('IdAuthExporterStalled', [40, 59])
t.expect('IdAuthExporterUnauthorized', [40, 59])
T.append(t)

OUTAGE = Provider([ON] * 3 + [OFF] * 10)
LOOP = set(range(20, 75)) - set(range(25, 75, 6))
for store in (False, True):
    t = Test('''Both replicas crash-loop from 20m (each is up for one scrape in six, and dies before it finishes
a poll; the heartbeat restarts with the process) %s, while an outage starts at 30m that
nobody sees. The for: of Down and ReplicaDown restart with every scrape that works, Stalled
sees a fresh heartbeat after each restart: none fires. IdAuthExporterBlind reads the last
successful poll of any replica, remembered by a recording rule: it pages 25 minutes after b's
poll of 12m (38m) and stays firing at every minute, however the replicas come and go.''' % (
        'with their stores (serving their last poll results)' if store else 'without stores'),
             [Replica('a:9877', 0, 75, polls=[1, 11], down=LOOP, store=store),
              B(75, polls=[2, 12], down=LOOP, store=store)], OUTAGE, 75)
    t.expect('IdAuthExporterBlind', [30, 37])
    for m in [38, 39, 40, 41, 42, 43, 44, 50, 60, 74]:
        t.expect('IdAuthExporterBlind', [m], blind(m * 60 - 720))
    t.expect('IdAuthExporterDown', [35, 50, 74])
    t.expect('IdAuthExporterReplicaDown', [35, 50, 74])
    t.expect('IdAuthExporterStalled', [50, 74])
    T.append(t)

t = Test('''Noise (Paging v2): the scheduler of both replicas stalls at once (a's last cycle at 11m, b's at
12m). IdAuthExporterStalled pages at 38m. IdAuthExporterReplicaStalled does not blip for a
while b's heartbeat is a minute younger (its for: is a poll period), IdAuthorityDataStale does
not blame the provider (its last check is old because our poller stopped), and
IdAuthExporterBlind leaves the stall to speak.''',
         [Replica('a:9877', 0, 60, stalled_from=12), B(60, stalled_from=13)], p, 60)
t.expect('IdAuthExporterStalled', [37])
t.expect('IdAuthExporterStalled', [38], stalled(38 * 60 - 720))
t.expect('IdAuthExporterStalled', [59], stalled(59 * 60 - 720))
t.expect('IdAuthExporterReplicaStalled', [37, 38, 48, 59])
t.expect('IdAuthorityDataStale', [46, 52, 59])
t.expect('IdAuthExporterBlind', [38, 50, 59])
T.append(t)

t = Test('''Noise (Paging v2): a rollout with a wrong key. The old pods a and b end at 30m; the new ones, c
and d, start at 30m without stores, and every poll of theirs is refused. Every pair is unknown on
the new pods from their start, but IdAuthorityStatusUnknown does not fire before (or after)
IdAuthExporterUnauthorized, which pages at 45m; nor does IdAuthExporterBlind.''',
         [Replica('a:9877', 0, 30), B(30),
          Replica('c:9877', 30, 60, fail=fails(30, 60, 'unauthorized')),
          Replica('d:9877', 30, 60, polls=[m for m in range(60) if m % 10 == 2], fail=fails(30, 60, 'unauthorized'))],
         p, 60, pairs=(('NG', 'BVN'), ('KE', 'NATIONAL_ID')))
t.expect('IdAuthExporterUnauthorized', [43])
t.expect('IdAuthExporterUnauthorized', [45, 59], unauthorized())
t.expect('IdAuthorityStatusUnknown', [35, 41, 42, 43, 45, 50, 59])
t.expect('IdAuthExporterBlind', [48, 59])
T.append(t)

EU, US = {'cluster': 'eu'}, {'cluster': 'us'}
t = Test('''Clusters merged in one global ruler (series labelled cluster="eu" and "us", which the default
_config does not name): every replica of eu dies at 20m while us watches. IdAuthExporterDown
pages for eu (the labels users add survive aggregation), and no IdAuthExporterReplicaDown
warning claims that another replica still watches.''',
         [Replica('a:9877', 0, 45, down=range(20, 45), labels=EU), B(45, down=range(20, 45), labels=EU),
          Replica('c:9877', 0, 45, labels=US), Replica('d:9877', 0, 45, polls=[m for m in range(45) if m % 10 == 2], labels=US)], p, 45)
t.expect('IdAuthExporterDown', [29])
t.expect('IdAuthExporterDown', [31, 44], down(EU))
t.expect('IdAuthExporterReplicaDown', [31, 44])
T.append(t)

DISCOVERED = tuple(('X%d' % (i // 4), ['NATIONAL_ID', 'PASSPORT', 'VOTER_ID', 'DRIVERS_LICENSE'][i % 4]) for i in range(20))
prov = {pair: Provider([None]) for pair in DISCOVERED}
prov[('NG', 'BVN')] = p
t = Test('''A storm: twenty pairs discovered at once (10m) for which the provider has no data (every poll
of them fails: no_data), beside NG BVN, which is fine. One IdAuthorityStatusUnknown per pair,
each with its own description (20 alerts, 10 minutes after the pairs appear); the Alertmanager
example's chat route batches them into one message (tests/alertmanager.rs). Nobody is blind:
NG BVN's polls succeed.''',
         [Replica('a:9877', 0, 30, pairs_from={pair: 10 for pair in DISCOVERED})], prov, 30,
         pairs=(('NG', 'BVN'),) + DISCOVERED)
t.expect('IdAuthorityStatusUnknown', [19])
t.expect('IdAuthorityStatusUnknown', [21, 29], *[unknown(None, c, x) for c, x in DISCOVERED])
t.expect('IdAuthExporterBlind', [29])
T.append(t)

def discovery_failing(age):
    return ({'alertname': 'IdAuthExporterDiscoveryFailing', 'severity': 'warning', 'job': JOB}, {
        'summary': "idauth-exporter: Smile ID's catalogue not read for %s" % hdur(age),
        'description': "No replica of idauth-exporter has read Smile ID's catalogue (discovery) for %s. The pairs it last listed are still watched, but pairs the provider added since are not. Failures are counted in idauth_discovery_refreshes_total{result=\"failure\"}; the exporter log says why." % hdur(age),
        'runbook_url': RB + 'idauthexporterdiscoveryfailing'})


def discovery_series(instance, values):
    return """      - series: 'idauth_discovery_last_success_timestamp_seconds{job="idauth-exporter",instance="%s"}'
        values: '%s'
""" % (instance, values)


t = Test('''Discovery reads the catalogue every 6h; from 6h on, every read on both replicas fails (their
last successes at 0m and 360m; b started at 5m). IdAuthExporterDiscoveryFailing (warning) fires
once the newest success is more than a day old: after 1800m, not before.''',
         [], p, 1830, extra_series=discovery_series('a:9877', '0x359 21600x1470')
         + discovery_series('b:9877', '_x4 300x354 21600x1470'))
t.expect('IdAuthExporterDiscoveryFailing', [360, 1000, 1799])
for m in (1801, 1830):
    t.expect('IdAuthExporterDiscoveryFailing', [m], discovery_failing(m * 60 - 21600))
T.append(t)

t = Test('''Only replica a cannot read the catalogue (from 6h on); b reads it every 6h: no alert, since the
pairs b watches are current.''',
         [], p, 1830, extra_series=discovery_series('a:9877', '0x359 21600x1470')
         + discovery_series('b:9877', '0x359 21600x359 43200x359 64800x359 86400x359 108000x32'))
t.expect('IdAuthExporterDiscoveryFailing', [1000, 1801, 1830])
T.append(t)

write(sys.argv[1], '''# promtool test rules tests/exporter.yaml (from deploy/prometheus)
#
# The exporter-level alerts: is anybody watching, and are the polls working? Series are
# shaped like the exporter's (see authorities.yaml); replica a polls at minute 10k+1, b at
# 10k+2. A dead replica is scraped with up 0 and serves nothing else; when it comes back
# its counters start from 0.''', T)
