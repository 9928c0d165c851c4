# a malformed apt source: apt cannot compute the pending updates
echo 'deb-garbage this is not a source' > /etc/apt/sources.list.d/zz-dcops-broken.list
