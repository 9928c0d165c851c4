# the hub peer loses the management and data-center routes
wg set wg0 peer "$(wg show wg0 peers | head -1)" allowed-ips "$(hub_tunnel)/32"
