#!/bin/sh
# Entry point of the localhost/smmu-fleet-kafka image: a single-node KRaft broker.
#
# Configuration follows the apache/kafka image's convention, so one set of variables drives both:
#   KAFKA_FOO_BAR=v  ->  foo.bar=v   ("___" -> "-", "__" -> "_", "_" -> ".", lower-cased)
# Variables given override the single-node defaults written first (Java Properties: last key wins).
# Not turned into properties: KAFKA_HEAP_OPTS, KAFKA_OPTS, KAFKA_JVM_PERFORMANCE_OPTS and the other
# launcher variables listed below. CLUSTER_ID sets the KRaft cluster id used to format the log dir.
# SCRAM_USERS="SCRAM-SHA-256=[name=u,password=p];SCRAM-SHA-512=[...]" creates SCRAM credentials
# when the log dir is formatted (kafka-storage format --add-scram), before the broker starts.
# The log dir is formatted only once, so a restarted container keeps its data.
set -eu

KAFKA_HOME=/opt/kafka
CONF="$KAFKA_HOME/config/server.properties"
CLUSTER_ID="${CLUSTER_ID:-PEd_ZMErT0KDIqIelfEZvw}"

cat >"$CONF" <<PROPS
node.id=1
process.roles=broker,controller
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.quorum.voters=1@127.0.0.1:9093
log.dirs=/var/lib/kafka/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
auto.create.topics.enable=true
PROPS

env | sort | while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_LOG4J_OPTS | KAFKA_JMX_OPTS | \
      KAFKA_GC_LOG_OPTS | KAFKA_VERSION | KAFKA_HOME | KAFKA_LOG4J_ROOT_LOGLEVEL | KAFKA_LOG4J_LOGGERS | \
      KAFKA_TOOLS_LOG4J_LOGLEVEL | KAFKA_JMX_HOSTNAME | KAFKA_JMX_PORT) ;;
    KAFKA_*)
      key=$(printf '%s' "${name#KAFKA_}" |
        sed -e 's/___/-/g' -e 's/__/+/g' -e 's/_/./g' -e 's/+/_/g' | tr '[:upper:]' '[:lower:]')
      printf '%s=%s\n' "$key" "$value" >>"$CONF"
      ;;
  esac
done

echo "[start-kafka] server.properties:"
sed -e 's/^\([^=]*\(jaas\.config\|password\)\)=.*/\1=[hidden]/' -e 's/^/[start-kafka]   /' "$CONF"

log_dirs=$(sed -n 's/^log\.dirs=//p' "$CONF" | tail -n 1)
first_dir=${log_dirs%%,*}
mkdir -p "$first_dir"

LOG4J="-Dlog4j.configuration=file:$KAFKA_HOME/config/log4j.properties"
LOG4J2="-Dlog4j2.configurationFile=file:$KAFKA_HOME/config/log4j2.properties"
if [ ! -f "$first_dir/meta.properties" ]; then
  echo "[start-kafka] formatting $log_dirs (cluster id $CLUSTER_ID)"
  set -f -- # no globbing of the [..] in SCRAM_USERS
  old_ifs=$IFS
  IFS=';'
  for user in ${SCRAM_USERS:-}; do set -- "$@" --add-scram "$user"; done
  IFS=$old_ifs
  set +f
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "$LOG4J" "$LOG4J2" -cp "$KAFKA_HOME/libs/*" \
    kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$CONF" "$@"
fi

# shellcheck disable=SC2086 # the *_OPTS variables are word lists
exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true} \
  "$LOG4J" "$LOG4J2" ${KAFKA_OPTS:-} -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$CONF"
