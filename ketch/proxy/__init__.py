"""The node's service proxy: nftables rules so service addresses reach their ready endpoints."""
