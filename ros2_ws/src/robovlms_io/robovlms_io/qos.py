"""The suite's three QoS classes (README, Interfaces): sensor, reliable and latched."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

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
