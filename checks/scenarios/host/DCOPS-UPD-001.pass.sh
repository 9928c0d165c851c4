# the host's mirror (a local file repository marked as the security archive) has nothing newer than what is installed; apt's lists are fresh
R=/srv/dcops-scenario-apt
rm -f /etc/apt/sources.list.d/zz-dcops-broken.list
mkdir -p "$R"
v=$(dpkg-query -W -f='${Version}' curl); a=$(dpkg-query -W -f='${Architecture}' curl)
# curl's own record (its dependencies as installed), at version $v, as a mirror's Packages lists it
{ dpkg-query -s curl | grep -v -e '^Status:' | sed "s/^Version: .*/Version: $v/"; printf 'Filename: pool/curl.deb\nSize: 1\n\n'; } > "$R/Packages"
printf 'Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\nVersion: 12\nDate: %s\nArchitectures: %s\nComponents: main\nSHA256:\n %s %s Packages\n' \
  "$(date -Ru)" "$a" "$(sha256sum "$R/Packages" | cut -d' ' -f1)" "$(stat -c %s "$R/Packages")" > "$R/Release"
echo "deb [trusted=yes] file:$R ./" > /etc/apt/sources.list.d/dcops-scenario.list
apt-get update -qq -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/dcops-scenario.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
