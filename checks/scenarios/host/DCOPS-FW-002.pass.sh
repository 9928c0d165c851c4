# the rolled-out ruleset
nft -f /etc/nftables.conf
