"""`python -m tools.verify --stack <stack>` (make verify STACK=...): after `pulumi up`, check the live environment.

Reads the stack's outputs (`pulumi stack output --json`, or --outputs FILE) and its stack file, then asks Saleor,
Vault, the control plane, the services and (with a kubeconfig) the cluster whether the deploy really works.
One line per check: ok, FAIL or skip with the reason; exit 1 on any FAIL.
"""
