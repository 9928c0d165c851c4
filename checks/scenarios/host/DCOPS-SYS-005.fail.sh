# net.ipv4.tcp_syncookies=0
sysctl -q -w net.ipv4.tcp_syncookies=0
