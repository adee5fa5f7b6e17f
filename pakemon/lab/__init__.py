"""The lab: traffic generators and sample captures for demo, tests and bench."""
