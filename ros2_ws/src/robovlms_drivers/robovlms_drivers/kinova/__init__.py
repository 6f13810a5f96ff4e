"""Kinova Gen3 arm driver: pure conversions, backends (kortex, sim), the safety core and the node."""
