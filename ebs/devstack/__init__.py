"""The embedded default stack for `ebs dev`: private servers started as child processes."""
