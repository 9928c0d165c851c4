# no insecure server
rm -f /usr/sbin/in.telnetd
