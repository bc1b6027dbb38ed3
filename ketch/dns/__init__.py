"""Cluster DNS: A/AAAA/SRV/CNAME for services and pods under the cluster domain, forwarding the rest."""
