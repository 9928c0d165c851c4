# the tunnel is down
systemctl stop wg-quick@wg0
