"""ebs: durable rebuild service for Fedora ELN on Temporal."""
