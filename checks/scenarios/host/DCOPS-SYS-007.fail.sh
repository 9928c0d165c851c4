# net.ipv4.icmp_echo_ignore_broadcasts=0
sysctl -q -w net.ipv4.icmp_echo_ignore_broadcasts=0
