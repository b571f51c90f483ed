from gen import *
import sys
ON = 'online'
T = []
p = Provider([ON] * 20)
B = lambda n, **kw: Replica('b:9877', 0, n, polls=[m for m in range(n) if m % 10 == 2], **kw)

t = Test('''Both replicas die at 20m (scrapes fail, up 0): nobody watches. IdAuthExporterDown (critical)
fires after 10 minutes; no IdAuthExporterReplicaDown, since no replica is up.''',
         [Replica('a:9877', 0, 45, down=range(20, 45)), B(45, down=range(20, 45))], p, 45)
t.expect('IdAuthExporterDown', [0, 19, 29])
t.expect('IdAuthExporterDown', [31, 44], down())
t.expect('IdAuthExporterReplicaDown', [31, 44])
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
T.append(t)

t = Test('''Only a stalls; b polls: IdAuthExporterReplicaStalled (warning) for a, no IdAuthExporterStalled.''',
         [Replica('a:9877', 0, 50, stalled_from=12), B(50)], p, 50)
t.expect('IdAuthExporterReplicaStalled', [20, 36])
t.expect('IdAuthExporterReplicaStalled', [38], replica_stalled('a:9877', 38 * 60 - 660))
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

t = Test('''The API key is revoked at 10m: every poll of both replicas (from 12m) is unauthorized.
Once no replica has had a successful poll within the look-back (15m),
IdAuthExporterUnauthorized pages a period and 2 minutes later (27m to 28m): two cycles
in a row were refused.''',
         [Replica('a:9877', 0, 45, fail={m: 'unauthorized' for m in range(11, 45)}),
          B(45, fail={m: 'unauthorized' for m in range(12, 45)})], p, 45)
t.expect('IdAuthExporterUnauthorized', [10, 20, 25])
t.expect('IdAuthExporterUnauthorized', [29, 31, 44], unauthorized())
T.append(t)

t = Test('''Only replica a's key is refused (a stale secret on one pod); b polls: no critical page.''',
         [Replica('a:9877', 0, 45, fail={m: 'unauthorized' for m in range(11, 45)}), B(45)], p, 45)
t.expect('IdAuthExporterUnauthorized', [31, 44])
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
