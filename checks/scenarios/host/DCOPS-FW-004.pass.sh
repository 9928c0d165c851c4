# the rolled-out ruleset (SSH from management only)
nft -f /etc/nftables.conf
