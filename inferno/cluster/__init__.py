"""The cluster side of Inferno, as pure logic: what a managed Deployment says about its server
(inventory), and what to change in it to enact a solution (the actuation plan). Nothing here talks
to Kubernetes: :mod:`inferno.k8s` reads the objects and applies the plans."""
