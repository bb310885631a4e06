"""Local image builds (`make images`): a Debian base image, then each service image, pushed to a loopback registry."""
