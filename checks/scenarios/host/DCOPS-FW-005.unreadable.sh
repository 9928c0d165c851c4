# the package database is gone: which packages are installed cannot be read
backup /var/lib/dpkg/status; rm -f /var/lib/dpkg/status
