"""The suite's QoS classes (README, Interfaces): sensor, reliable, latched, and the trial instruction's lease."""
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

# sensor: best effort, keep last; a subscriber wants only the newest frame, a publisher buffers a few.
SENSOR_SUBSCRIPTION = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                                 history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.VOLATILE)
SENSOR_PUBLICATION = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                                history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.VOLATILE)
# reliable: state, status and instructions.
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# commands: reliable, and only the newest one matters (a stale command must never be executed late).
COMMAND = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# latched: reliable + transient local, so a late joiner gets the last value (the e-stop).
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
# trial instruction: latched, with a liveliness lease. DDS declares the publisher lost about one watch lease
# after its process stops asserting (it dies, SIGKILL included), so a trial's policy stops acting within ~0.5 s
# of losing its owner. The watching subscription requests the longer lease; offered <= requested, and a
# publisher without a lease (`ros2 topic pub`) never matches the watch, only the plain instruction subscriptions.
# The owner asserts by topic every TRIAL_LEASE_ASSERT_S: Fast DDS's AUTOMATIC liveliness, measured with the
# Kilted wheels, lets a live publisher's lease lapse after one watch lease, which stopped every trial at 0.5 s.
TRIAL_LEASE_ASSERT_S, TRIAL_LEASE_OFFERED_S, TRIAL_LEASE_WATCHED_S = 0.1, 0.2, 0.5
TRIAL_INSTRUCTION = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL,
                               liveliness=LivelinessPolicy.MANUAL_BY_TOPIC,
                               liveliness_lease_duration=Duration(seconds=TRIAL_LEASE_OFFERED_S))
TRIAL_INSTRUCTION_WATCH = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                     history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                     liveliness=LivelinessPolicy.AUTOMATIC,
                                     liveliness_lease_duration=Duration(seconds=TRIAL_LEASE_WATCHED_S))
