"""Vietnamese for what the checks write in English: reasons, evidence labels, rationales.

The checks write their reasons and evidence keys in English (they are read by engineers
and by CI).  The Vietnamese report must not show English sentences, so this module
translates them:

- :data:`RATIONALE_VI`: the rationale of every catalog control (a catalog entry that
  carries its own ``rationale_vi`` wins);
- :data:`EVIDENCE_LABELS`: a Vietnamese label for every evidence key the controls write;
  configuration keywords (``permitrootlogin``, ``net.ipv4.tcp_syncookies``...) are shown
  as they are, being names an auditor compares with the configuration;
- :data:`REASONS`: patterns for every reason the controls write, each with its Vietnamese
  sentence; the values inside (addresses, file names, tool output) are kept verbatim and
  marked ``translate="no"``.

A reason no pattern knows is shown with a Vietnamese note and the original marked as
untranslated tool text (``lang="en" translate="no"``), and is listed in the JSON report
(``untranslated``); ``tests/test_report_language.py`` fails when a reason written by
the controls' code, or an evidence key, has no translation here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

# --------------------------------------------------------------------------- rationales

RATIONALE_VI: dict[str, str] = {
    "DCOPS-SSH-001": "Quản trị viên đăng nhập bằng tài khoản định danh rồi mới nâng quyền; đăng nhập thẳng bằng root không gắn được trách nhiệm cho từng người và là mục tiêu đầu tiên của việc dò mật khẩu.",
    "DCOPS-SSH-002": "Chỉ đăng nhập bằng khóa mới chống được dò mật khẩu trên các đường truyền đi qua mạng WAN; cấp độ 3 yêu cầu xác thực mạnh đối với quản trị viên.",
    "DCOPS-SSH-003": "Xác thực tương tác bàn phím (PAM) là con đường thứ hai để đăng nhập bằng mật khẩu, kể cả khi đã tắt PasswordAuthentication.",
    "DCOPS-SSH-004": "Tài khoản có mật khẩu rỗng không bao giờ được phép truy cập từ xa.",
    "DCOPS-SSH-005": "Chỉ tài khoản vận hành được chỉ định mới được đăng nhập; mọi tài khoản khác, kể cả tài khoản do gói phần mềm hoặc kẻ xâm nhập tạo ra, đều bị từ chối.",
    "DCOPS-SSH-006": "Cấp độ 3 yêu cầu tự động ngắt phiên quản trị không hoạt động; một phiên bị bỏ quên trên máy của người vận hành là một cửa ngỏ.",
    "DCOPS-SSH-007": "Giới hạn thấp số lần thử xác thực (MaxAuthTries) làm chậm việc dò mật khẩu và để lại dấu vết trong nhật ký.",
    "DCOPS-SSH-008": "Chuyển tiếp kết nối biến kênh quản trị thành đường hầm vượt qua tường lửa giữa các vùng mạng.",
    "DCOPS-SSH-009": "Cấp độ 3 yêu cầu quản trị qua kênh mã hóa; các thuật toán mã hóa CBC, MAC dùng SHA-1/MD5 và trao đổi khóa dùng SHA-1 là yếu.",
    "DCOPS-SSH-010": "Thông tin đăng nhập và dấu vân tay khóa phải được gửi về máy chủ nhật ký tập trung để phục vụ điều tra.",
    "DCOPS-SSH-011": "Ai ghi được tệp sshd_config thì mở được truy cập từ xa.",
    "DCOPS-FW-001": "Cấp độ 3 yêu cầu tường lửa giữa các vùng mạng; máy của đơn vị chỉ chấp nhận những gì được cho phép rõ ràng.",
    "DCOPS-FW-002": "Máy không phải bộ định tuyến thì không được định tuyến giữa các giao diện; bộ định tuyến chỉ chuyển tiếp những gì được cho phép.",
    "DCOPS-FW-003": "Mỗi cổng đang lắng nghe là một điểm có thể bị tấn công; danh sách được phép lấy từ tệp mô tả tỉnh (SSH, WireGuard, node_exporter trên địa chỉ đường hầm).",
    "DCOPS-FW-004": "Cấp độ 3 chỉ cho phép quản trị từ các dải địa chỉ của vùng quản trị; quy tắc tường lửa cho SSH phải ghi rõ các nguồn đó.",
    "DCOPS-FW-005": "Cấp độ 3 yêu cầu tắt các giao thức không an toàn; trên máy không được có dịch vụ đăng nhập truyền mật khẩu dạng rõ.",
    "DCOPS-WG-001": "Mọi lưu lượng giữa đơn vị và trung tâm đi qua đường hầm mã hóa; máy ngang hàng của đường hầm phải là cổng trung tâm, đúng địa chỉ WAN và cổng.",
    "DCOPS-WG-002": "Đường hầm đã cấu hình nhưng lâu không có bắt tay (handshake) là đường hầm đã mất; đơn vị bị cắt khỏi các nền tảng.",
    "DCOPS-WG-003": "Khóa riêng xác thực đơn vị trên mạng WAN; khóa được tạo trên máy và không bao giờ rời khỏi máy.",
    "DCOPS-NTP-001": "Cấp độ 3 yêu cầu đồng bộ thời gian trên mọi thiết bị để đối chiếu được nhật ký của các đơn vị.",
    "DCOPS-NTP-002": "Máy còn theo các nguồn thời gian khác có thể bị các nguồn đó làm lệch giờ.",
    "DCOPS-LOG-001": "Cấp độ 3 yêu cầu thu thập tập trung nhật ký truy cập, quản trị và an toàn, lưu ít nhất 3 tháng.",
    "DCOPS-LOG-002": "Cấu hình chuyển nhật ký vô tác dụng khi dịch vụ ghi nhật ký không chạy.",
    "DCOPS-LOG-003": "Sự kiện truy cập và quản trị (auth, authpriv) phải có trong những gì được ghi và chuyển về trung tâm.",
    "DCOPS-MON-001": "Số liệu giám sát để lộ thông tin về máy; chỉ vùng quản trị được truy cập chúng qua đường hầm, không bao giờ trên mạng LAN hay WAN của đơn vị.",
    "DCOPS-MON-002": "Thiếu nó, trung tâm không theo dõi được máy của đơn vị (năng lực, đồng hồ, ổ đĩa).",
    "DCOPS-SYS-001": "Gói chuyển hướng ICMP (redirect) cho phép bất kỳ ai trên cùng đường truyền thay đổi bảng định tuyến của máy.",
    "DCOPS-SYS-002": "Chỉ bộ định tuyến mới gửi gói chuyển hướng, và máy của chúng ta không được quảng bá tuyến theo cách đó.",
    "DCOPS-SYS-003": "Định tuyến theo nguồn cho phép bên gửi chọn đường đi vòng qua tường lửa.",
    "DCOPS-SYS-004": "Loại bỏ gói tin giả mạo địa chỉ nguồn đến từ giao diện không đúng.",
    "DCOPS-SYS-005": "Giúp máy tiếp tục phục vụ khi bị tấn công SYN flood.",
    "DCOPS-SYS-006": "Gói tin có địa chỉ nguồn không thể có là dấu hiệu giả mạo hoặc định tuyến sai và cần được ghi nhật ký.",
    "DCOPS-SYS-007": "Ngăn máy bị lợi dụng trong tấn công khuếch đại kiểu smurf.",
    "DCOPS-SYS-008": "Hạn chế con trỏ nhân và dmesg, tắt BPF cho người dùng thường, gia cố BPF JIT và bảo vệ liên kết tệp giúp đóng các con đường leo thang đặc quyền cục bộ phổ biến. Trong container, các tham số này thuộc máy chủ chứa container; khi đó kiểm tra báo là ngoại lệ (chưa đánh giá được) kèm các giá trị quan sát được.",
    "DCOPS-USR-001": "Mọi tài khoản đăng nhập được đều phải có lý do (root và tài khoản vận hành); tài khoản của gói phần mềm và dịch vụ dùng nologin.",
    "DCOPS-USR-002": "Một tài khoản UID 0 thứ hai là một tài khoản root ẩn.",
    "DCOPS-USR-003": "Trường mật khẩu rỗng cho phép bất kỳ ai đăng nhập cục bộ bằng tài khoản đó.",
    "DCOPS-K8S-001": "Phân vùng bên trong cụm: mỗi pod chỉ nhận và mở những kết nối mà các phụ thuộc của nền tảng cần.",
    "DCOPS-K8S-002": "Pod không được chạy ở chế độ đặc quyền, bằng root hay truy cập tài nguyên của máy chủ.",
    "DCOPS-K8S-003": "Một nền tảng không được chiếm hết CPU, bộ nhớ hay dung lượng lưu trữ của các nền tảng khác.",
    "DCOPS-K8S-004": "Container không khai báo giới hạn sẽ nhận giá trị mặc định, nhờ đó hạn mức luôn được áp dụng.",
    "DCOPS-K8S-005": "Quyền quản trị toàn cụm chỉ thuộc nhóm quản trị viên được chỉ định và các thành phần điều khiển của cụm.",
    "DCOPS-K8S-006": "Cán bộ kiểm tra, đánh giá xem được cụm mà không thay đổi được gì và không thấy được thông tin xác thực.",
    "DCOPS-K8S-007": "Cấp độ 3 yêu cầu mã hóa dữ liệu quan trọng khi lưu trữ; Secret trong etcd không được đọc được từ tệp dữ liệu hay bản sao lưu của etcd.",
    "DCOPS-K8S-008": "Phân vùng chỉ có giá trị khi các quy tắc đúng; một chính sách được thêm hay sửa bằng tay sẽ mở ra đường đi mà mô hình không biết.",
    "DCOPS-K8S-009": "Một tiến trình bị chiếm quyền không sửa được ảnh container của mình và không hoạt động như root trên máy chủ.",
    "DCOPS-K8S-010": "Dữ liệu được lưu trên lớp lưu trữ có nhân bản (hoặc lưu trữ lâu dài) mà tệp mô tả tỉnh khai báo, không trên lớp mặc định có thể không nhân bản.",
    "DCOPS-K8S-011": "Pod của nền tảng không cần gọi API Kubernetes; mã xác thực (token) trong pod chỉ có ích cho kẻ xâm nhập.",
    "DCOPS-K8S-012": "Phần mềm chạy trên các nền tảng phải đúng là phần mềm đã được rà quét và phê duyệt.",
    "DCOPS-K8S-013": "Mục tiêu về độ sẵn sàng dựa trên mức dự phòng đã khai báo.",
    "DCOPS-SLA-001": "Các nền tảng phục vụ người dân và cơ quan; tỉnh cam kết độ sẵn sàng cho từng nền tảng trong một khoảng thời gian (mặc định 30 ngày).",
    "DCOPS-SLA-002": "Nền tảng trả lời quá chậm cũng làm người dân không được phục vụ như nền tảng ngừng hoạt động.",
    "DCOPS-SLA-003": "Đơn vị chỉ truy cập được các nền tảng qua đường truyền của mình; độ sẵn sàng của đường truyền được đo tại địa chỉ đường hầm.",
    "DCOPS-SLA-004": "Tốc độ tiêu hao nhanh (gấp 14,4 lần trong 1 giờ hoặc gấp 6 lần trong 6 giờ) làm cạn ngân sách lỗi của cả tháng trong vài ngày và cần người xử lý ngay.",
}

# --------------------------------------------------------------------------- evidence

EVIDENCE_LABELS: dict[str, str] = {
    "addresses": "Địa chỉ", "allowed": "Được phép", "availability_pct": "Độ sẵn sàng (%)", "bad": "Mục không đạt",
    "binaries": "Tệp chương trình", "bindings": "Liên kết phân quyền (binding)", "build_info": "Có thông tin phiên bản (build_info)",
    "chains": "Chuỗi tường lửa (chain)", "config_valid": "Cấu hình hợp lệ", "container": "Loại container",
    "curl_rc": "Mã trả về của curl", "empty_password": "Tài khoản có mật khẩu rỗng",
    "encryption_provider_config": "Tệp cấu hình mã hóa (--encryption-provider-config)",
    "etcd_namespaces_found": "Namespace tìm thấy trong etcd", "etcd_prefixes": "Tiền tố khóa trong etcd",
    "etcd_secrets_sampled": "Số Secret đã lấy mẫu trong etcd", "expected": "Giá trị yêu cầu", "failing": "Không đạt",
    "fast_pct": "Tỷ lệ yêu cầu có độ trễ dưới ngưỡng (%)", "files": "Tệp", "firing": "Cảnh báo đang kích hoạt",
    "forwarding": "Chuyển tiếp nhật ký", "handshake_age_s": "Thời gian từ lần bắt tay gần nhất (giây)",
    "hub_key_compared": "Đã đối chiếu khóa của cổng trung tâm", "idle_limit_s": "Thời gian ngắt phiên không hoạt động (giây)",
    "input_chains": "Số chuỗi input", "leap_status": "Trạng thái đồng bộ (leap status)", "listening": "Cổng đang lắng nghe",
    "login_accounts": "Tài khoản đăng nhập được", "management": "Dải địa chỉ vùng quản trị", "max": "Tối đa",
    "max_age_s": "Thời gian tối đa (giây)", "max_s": "Thời gian tối đa (giây)",
    "min_coverage_pct": "Tỷ lệ thời gian giám sát tối thiểu (%)", "missing": "Còn thiếu", "namespaces": "Namespace",
    "not_allowed": "Không được phép", "note": "Ghi chú", "packages": "Gói phần mềm",
    "page_rules_expected": "Số quy tắc cảnh báo khẩn cần có", "page_rules_loaded": "Số quy tắc cảnh báo khẩn đã nạp",
    "peers": "Máy ngang hàng (peer)", "probe": "Phép thăm dò", "query": "Truy vấn Prometheus", "receivers": "Máy nhận nhật ký",
    "read_again": "Đọc lại lần hai (socket không có tiến trình sở hữu)", "reference": "Tham chiếu", "role": "Vai trò (ClusterRole)", "rsyslogd_pids": "Tiến trình rsyslogd (PID)", "rules": "Quy tắc",
    "rules_recording_auth": "Quy tắc ghi sự kiện xác thực", "secret_access": "Quyền đọc Secret",
    "secrets_first_provider": "Phương thức mã hóa đầu tiên cho Secret", "selected_source": "Nguồn thời gian đang chọn",
    "sockets": "Socket đang lắng nghe", "sources": "Nguồn thời gian", "ssh_rules": "Quy tắc cho phép SSH",
    "stored_unencrypted": "Secret lưu không mã hóa", "target_pct": "Mục tiêu (%)", "threshold_ms": "Ngưỡng độ trễ (ms)",
    "too_open": "Quyền truy cập quá rộng", "transient": "Socket tạm thời (không còn khi đọc lại)", "too_wide": "Quy tắc quá rộng", "uid0": "Tài khoản có UID 0",
    "unexpected": "Ngoài danh sách cho phép", "url": "Địa chỉ URL", "values": "Giá trị", "weak": "Thuật toán yếu",
    "wg0": "Giao diện wg0", "window_days": "Khoảng thời gian đánh giá (ngày)", "would_settle": "Cần có để đánh giá được",
    "write_verbs": "Quyền ghi",
    # SLA (checks/sla.py)
    "error_budget_total_min": "Ngân sách lỗi của cả kỳ (phút)", "error_budget_consumed_min": "Ngân sách lỗi đã dùng (phút)",
    "error_budget_remaining_min": "Ngân sách lỗi còn lại (phút)", "error_budget_remaining_pct": "Ngân sách lỗi còn lại (%)",
    "monitored_s": "Thời gian được giám sát (giây)", "window_s": "Độ dài kỳ đánh giá (giây)",
    "coverage_pct": "Tỷ lệ thời gian được giám sát (%)", "coverage_daily": "Thời gian được giám sát theo ngày",
    "coverage_query": "Truy vấn thời gian giám sát", "daily": "Số liệu theo ngày", "daily_error": "Lỗi khi lấy số liệu theo ngày",
    "samples_of_1h_ratio": "Số mẫu tỷ lệ theo giờ", "latency_ms": "Độ trễ (ms)",
    # written by the synthetic sample and by hand-made results in tests
    "observed": "Giá trị quan sát được", "host": "Máy", "peer_endpoint": "Điểm kết nối của máy ngang hàng",
    "latest_handshake_age_s": "Thời gian từ lần bắt tay gần nhất (giây)", "public_key": "Khóa công khai",
    "ssh": "Kết nối SSH", "mode": "Quyền truy cập tệp", "private_key": "Khóa riêng", "wg_conf": "Tệp cấu hình WireGuard",
    "pulumi_env": "Biến môi trường Pulumi", "passphrase": "Cụm mật khẩu", "ssh_host_key": "Khóa máy chủ SSH",
    "nested": "Dữ liệu lồng nhau", "value": "Giá trị", "x": "Giá trị",
}

# Configuration keywords shown as they are: an auditor compares them with the configuration.
IDENTIFIER_KEYS = frozenset({
    "permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication", "challengeresponseauthentication",
    "permitemptypasswords", "allowusers", "allowgroups", "clientaliveinterval", "clientalivecountmax", "channeltimeout",
    "unusedconnectiontimeout", "maxauthtries", "x11forwarding", "allowtcpforwarding", "ciphers", "macs", "kexalgorithms",
    "loglevel", "etcd", "authenticationmethods", "pubkeyauthentication", "usepam",
})


def is_identifier_key(key: str) -> bool:
    """A configuration name (sshd keyword, sysctl key, file path) rather than a word."""
    return key in IDENTIFIER_KEYS or "." in key or "/" in key


def evidence_label(key: str) -> str | None:
    """The Vietnamese label of an evidence key; None when there is none (and it is not a keyword)."""
    if key in EVIDENCE_LABELS:
        return EVIDENCE_LABELS[key]
    return None


# Words of the catalog's Vietnamese titles that officials write otherwise.
TITLE_FIXES = {
    "kiểm toán viên": "cán bộ kiểm tra, đánh giá",
    "Image chỉ lấy từ kho image của tỉnh": "Ảnh container (image) chỉ lấy từ kho ảnh container của tỉnh",
}
_VI_LETTERS = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.I)


def fix_title(text: str) -> str:
    """A catalog title as officials write it: the fixes above, and an English technical term
    in parentheses marked as a gloss (⟦...⟧, rendered lang="en")."""
    for a, b in TITLE_FIXES.items():
        text = text.replace(a, b)
    return re.sub(r"\(([^()]*[a-z][^()]*)\)",
                  lambda m: m.group(0) if _VI_LETTERS.search(m.group(1)) else f"(⟦{m.group(1)}⟧)", text)


# --------------------------------------------------------------------------- zones and kinds

ZONES_VI = {
    "internal_users": "Vùng mạng người dùng nội bộ", "edge": "Vùng mạng biên", "internal_servers": "Vùng mạng máy chủ nội bộ",
    "dmz": "Vùng DMZ (vùng mạng trung gian)", "database": "Vùng mạng cơ sở dữ liệu", "management": "Vùng mạng quản trị",
    "wireless": "Vùng mạng không dây",
}
ZONES_EN = {
    "internal_users": "Internal users", "edge": "Edge", "internal_servers": "Internal servers", "dmz": "DMZ",
    "database": "Database", "management": "Management", "wireless": "Wireless",
}
KINDS_VI = {"endpoint": "máy đầu cuối của đơn vị", "gateway": "cổng trung tâm", "cluster": "cụm Kubernetes",
            "platform": "nền tảng", "wan_link": "đường truyền WAN"}
PLATFORM_KINDS_VI = {"portal": "Cổng dịch vụ công", "one-stop": "Một cửa điện tử", "e-office": "Quản lý văn bản và điều hành",
                     "lgsp": "Nền tảng tích hợp, chia sẻ dữ liệu", "ioc": "Giám sát, điều hành thông minh",
                     "lris": "Hệ thống thông tin báo cáo"}
RECLAIM_VI = {"Retain": "Giữ lại dữ liệu (Retain)", "Delete": "Xóa cùng yêu cầu (Delete)"}


# --------------------------------------------------------------------------- reasons


class Seg(NamedTuple):
    text: str
    verbatim: bool  # a value from the checked system or a tool: shown as is (translate="no")


# Short phrases that appear inside reasons (the 'why' of a failed sshd setting, the parts
# of a list of problems).
PHRASES: dict[str, str] = {
    "root may log in directly": "tài khoản root đăng nhập trực tiếp được",
    "password logins are accepted": "máy chấp nhận đăng nhập bằng mật khẩu",
    "keyboard-interactive (PAM password) logins are accepted": "máy chấp nhận đăng nhập tương tác bàn phím (mật khẩu qua PAM)",
    "empty passwords are accepted": "máy chấp nhận mật khẩu rỗng",
    "logins are not logged with enough detail": "thông tin đăng nhập không được ghi nhật ký đủ chi tiết",
    "idle sessions are never ended": "phiên quản trị không hoạt động không bao giờ bị ngắt",
    "no peer": "không có máy ngang hàng (peer) nào",
    "rsyslog configuration does not validate": "cấu hình rsyslog không hợp lệ",
    "rsyslogd is not running": "dịch vụ rsyslogd không chạy",
    "no rule records auth/authpriv events": "không có quy tắc ghi sự kiện xác thực (auth/authpriv)",
    "node_exporter is not listening": "node_exporter không lắng nghe",
    "the hub does not receive the sites' logs": "cổng trung tâm không nhận nhật ký của các đơn vị",
    "the input policy accepts: SSH is open to every source": "chính sách mặc định của chuỗi input là chấp nhận: SSH mở cho mọi nguồn",
    "no rule admits SSH from management": "không có quy tắc cho phép SSH từ vùng quản trị",
    "peer public key is not the hub's": "khóa công khai của máy ngang hàng không phải của cổng trung tâm",
    "no allow list (every account may log in)": "không có danh sách cho phép (mọi tài khoản đều đăng nhập được)",
    "host not in this environment (wan.hosts)": "máy không có trong môi trường này (wan.hosts)",
    "site not in this environment (wan.hosts)": "đơn vị không có trong môi trường này (wan.hosts)",
    "no platform namespaces on this cluster": "cụm này không chạy nền tảng nào",
    "kube-apiserver has no --encryption-provider-config": "kube-apiserver không có tham số --encryption-provider-config",
    "the read-only identity cannot see the API server's flags or etcd through the Kubernetes API, and the environment gives no other evidence":
        "tài khoản chỉ đọc không xem được tham số của máy chủ API hay etcd qua API Kubernetes, và môi trường không cung cấp bằng chứng nào khác",
    "grants more than get/list/watch": "cấp nhiều hơn quyền get/list/watch",
    "can read Secrets": "đọc được Secret",
    # namespace checks (checks/controls/cluster.py: the 'what' of _per_namespace)
    "no default-deny NetworkPolicy": "không có NetworkPolicy mặc định từ chối",
    "Pod Security 'restricted' not enforced": "không áp dụng mức Pod Security 'restricted'",
    "no ResourceQuota limiting pods, CPU and memory": "không có ResourceQuota giới hạn số pod, CPU và bộ nhớ",
    "no LimitRange with container CPU and memory defaults": "không có LimitRange đặt mặc định CPU và bộ nhớ cho container",
    "NetworkPolicies differ from the dependency graph": "NetworkPolicy khác với đồ thị phụ thuộc",
    "containers may run as root or write their root filesystem": "container có thể chạy bằng root hoặc ghi vào hệ thống tệp gốc",
    "PVCs not bound to their declared storage class": "PVC không gắn với lớp lưu trữ đã khai báo",
    "service account tokens mounted into pods": "mã xác thực (token) của service account được gắn vào pod",
    "images from outside the provincial registry": "ảnh container lấy từ ngoài kho ảnh của tỉnh",
    "replicas differ from the province file": "số bản sao (replica) khác với tệp mô tả tỉnh",
    "ready replicas differ from the province file": "số bản sao (replica) sẵn sàng khác với tệp mô tả tỉnh",
    "namespace missing": "thiếu namespace",
    # the synthetic sample's own phrases
    "observed value differs from the expected one": "giá trị quan sát được khác giá trị yêu cầu",
    "was failing last month": "kỳ trước không đạt",
    "certificate verify failed": "xác minh chứng thư số thất bại",
    "TLS error": "lỗi TLS",
}

_V = "(?P<{}>.+?)"


def _p(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.S)


# (pattern, Vietnamese): a group whose name ends in _t is translated in turn; every other
# group is a value kept verbatim.  Patterns match the whole reason.
REASONS: list[tuple[re.Pattern, str]] = [(_p(a), b) for a, b in [
    # hosts: SSH
    (r"sshd (?P<key>\S+) is (?P<got>.+?): (?P<why_t>.+)", "tham số sshd {key} đang là {got}: {why_t}"),
    (r"sshd -T does not list (?P<k>.+?): the offered algorithms are unknown",
     "sshd -T không liệt kê {k}: không xác định được các thuật toán máy cung cấp"),
    (r"idle sessions end after (?P<a_n>.+?)s \(> (?P<b_n>.+?)s\)", "phiên không hoạt động chỉ bị ngắt sau {a_n} giây (quá {b_n} giây)"),
    (r"MaxAuthTries (?P<n>.+?) > (?P<m>.+)", "số lần thử xác thực tối đa (MaxAuthTries) là {n}, vượt quá {m}"),
    (r"forwarding allowed \(X11 (?P<x>.+?), TCP (?P<t>.+?)\)", "cho phép chuyển tiếp kết nối (X11: {x}, TCP: {t})"),
    (r"weak algorithms offered: (?P<l>.+)", "máy cung cấp thuật toán yếu: {l}"),
    (r"writable by others or not root's: (?P<l>.+)", "tệp không thuộc root hoặc người khác ghi được: {l}"),
    (r"allow list is users (?P<u>.+?) groups (?P<g>.+?), expected users (?P<w>.+)",
     "danh sách cho phép gồm người dùng {u}, nhóm {g}; yêu cầu là người dùng {w}"),
    # hosts: firewall, services
    (r"no (?P<h>\S+) chain drops by default", "không có chuỗi {h} nào mặc định chặn (drop)"),
    (r"no (?P<h>\S+) chain at all: everything is accepted", "không có chuỗi {h} nào: mọi lưu lượng đều được chấp nhận"),
    (r"unexpected listening sockets: (?P<l>.+)", "có cổng đang lắng nghe ngoài danh sách cho phép: {l}"),
    (r"SSH accepted beyond management: (?P<l>.+)", "SSH được chấp nhận từ ngoài vùng quản trị: {l}"),
    (r"insecure services present: (?P<l>.+)", "có dịch vụ không an toàn: {l}"),
    (r"the package database lists (?P<n>.+?) package\(s\) and not dpkg itself: the installed packages are unknown",
     "cơ sở dữ liệu gói liệt kê {n} gói nhưng không có chính dpkg: không xác định được các gói đã cài"),
    # hosts: WireGuard
    (r"no WireGuard interface wg0: (?P<e>.+)", "không có giao diện WireGuard wg0: {e}"),
    (r"no handshake within (?P<s_n>.+?)s with: (?P<l>.+)", "không có bắt tay (handshake) trong {s_n} giây với: {l}"),
    (r"readable by others: (?P<l>.+)", "người khác đọc được: {l}"),
    (r"wg0 address (?P<a>.+?), expected (?P<b>.+)", "địa chỉ của wg0 là {a}, yêu cầu là {b}"),
    (r"(?P<n>\d+) peers, expected the hub only", "có {n} máy ngang hàng, chỉ được có cổng trung tâm"),
    (r"peer endpoint (?P<a>.+?), expected (?P<b>.+)", "điểm kết nối của máy ngang hàng là {a}, yêu cầu là {b}"),
    (r"allowed IPs (?P<a>.+?), expected (?P<b>.+)", "dải địa chỉ cho phép (allowed IPs) là {a}, yêu cầu là {b}"),
    (r"the hub's public key could not be read from the gateway \((?P<e>.+?)\): the peer cannot be shown to be the hub",
     "không đọc được khóa công khai của cổng trung tâm ({e}): không chứng minh được máy ngang hàng là cổng trung tâm"),
    (r"key file mode is (?P<m>.+)", "quyền truy cập của tệp khóa là {m}"),
    # hosts: time, logs, monitoring
    (r"not synchronised to (?P<s>.+?) \(leap status (?P<l>.+?), selected (?P<x>.+?)\)",
     "không đồng bộ thời gian với {s} (trạng thái leap {l}, nguồn đang chọn {x})"),
    (r"hub's clock not serving \(leap status (?P<l>.+?)\)", "đồng hồ của cổng trung tâm không cung cấp thời gian (trạng thái leap {l})"),
    (r"the hub follows other sources: (?P<l>.+)", "cổng trung tâm theo các nguồn thời gian khác: {l}"),
    (r"time sources (?P<a>.+?), expected only (?P<b>.+)", "nguồn thời gian là {a}, chỉ được phép {b}"),
    (r"no forwarding to (?P<a>.+)", "không chuyển nhật ký tới {a}"),
    (r"listens on (?P<a>.+?), expected only (?P<b>.+)", "đang lắng nghe trên {a}, chỉ được phép {b}"),
    (r"no metrics at (?P<u>.+?) \(curl rc (?P<rc>.+?)\)", "không lấy được số liệu tại {u} (mã trả về của curl {rc})"),
    # hosts: accounts, kernel
    (r"unexpected accounts with a login shell: (?P<l>.+)", "có tài khoản ngoài danh sách đăng nhập được (có shell): {l}"),
    (r"UID 0 accounts: (?P<l>.+)", "các tài khoản có UID 0: {l}"),
    (r"empty passwords: (?P<l>.+)", "tài khoản có mật khẩu rỗng: {l}"),
    (r"(?P<k>[a-z0-9_]+(?:\.[a-z0-9_*-]+)+)=(?P<v>\S*) \(want (?P<w>.+?)\)", "{k} = {v} (yêu cầu {w})"),
    (r"exception: this host is a container \((?P<c>.+?)\); machine-wide kernel keys are its host's, not the endpoint's: (?P<k>.+)",
     "ngoại lệ: máy này là container ({c}); các tham số nhân (kernel) dùng chung là của máy chủ chứa container, không phải của máy đầu cuối: {k}"),
    # hosts and clusters: reaching them, applicability
    (r"host unreachable over SSH as (?P<u>.+?) from management: (?P<e>.+)",
     "không kết nối được tới máy qua SSH bằng tài khoản {u} từ vùng quản trị: {e}"),
    (r"host unreachable over the tunnel", "không kết nối được tới máy qua đường hầm"),
    (r"cannot reach the hosts: (?P<e>.+)", "không kết nối được tới các máy: {e}"),
    (r"cannot read cluster (?P<c>.+?) \((?P<k>.+?)\): (?P<e>.+)", "không đọc được cụm {c} ({k}): {e}"),
    (r"the API server of cluster (?P<c>\S+) did not answer within (?P<t_n>\S+) s \((?P<e>.+)\)",
     "máy chủ API của cụm {c} không trả lời trong {t_n} giây ({e})"),
    (r"applies to (?P<k_k>.+?), not a (?P<x_k>.+)", "chỉ áp dụng cho {k_k}, không áp dụng cho {x_k}"),
    (r"applies at levels (?P<l>.+?)[;,] (?:host|cluster|the province) is level (?P<n>.+)",
     "chỉ áp dụng cho cấp độ {l}; hệ thống ở cấp độ {n}"),
    (r"the environment of stack '(?P<s>.+?)' gives no access to cluster '(?P<c>.+?)'",
     "môi trường {s} không cho phép truy cập cụm {c}"),
    (r"control raised (?P<e>.+?): (?P<m>.+)", "kiểm tra gặp lỗi {e}: {m}"),
    (r"could not stat (?P<f>.+)", "không đọc được thông tin tệp {f}"),
    (r"could not read (?P<f>.+)", "không đọc được {f}"),
    (r"(?P<f>\S+) is missing", "thiếu {f}"),
    # clusters
    (r"(?P<what_t>.+?) in: (?P<l>.+)", "{what_t} tại: {l}"),
    (r"(?P<n>\d+) namespace\(s\) checked", "đã kiểm tra {n} namespace"),
    (r"cluster-admin granted beyond the allowed list: (?P<l>.+)", "quyền cluster-admin được cấp ngoài danh sách cho phép: {l}"),
    (r"auditor role (?P<l_t>.+)", "vai trò của cán bộ kiểm tra, đánh giá {l_t}"),
    (r"ClusterRole (?P<r>.+?) does not exist", "không có ClusterRole {r}"),
    (r"no evidence: neither the API server's configuration nor etcd could be read \((?P<a>.+?); (?P<b>.+)\)",
     "không có bằng chứng: không đọc được cả cấu hình máy chủ API lẫn etcd ({a}; {b})"),
    (r"the API server's configuration could not be read \((?P<e>.+?)\): only etcd was sampled",
     "không đọc được cấu hình máy chủ API ({e}): chỉ lấy mẫu được etcd"),
    (r"etcd could not be read \((?P<e>.+?)\): the configuration says new Secrets are encrypted, but what is stored was not seen",
     "không đọc được etcd ({e}): cấu hình cho biết Secret mới được mã hóa, nhưng chưa thấy được dữ liệu đang lưu"),
    (r"zero Secrets sampled in etcd and the platforms' namespaces (?P<n>.+?) are not there either: the read did not reach the cluster's data \(wrong etcd, --etcd-prefix or permissions\)",
     "không lấy mẫu được Secret nào trong etcd và cũng không thấy các namespace {n} của nền tảng: việc đọc chưa tới được dữ liệu của cụm (sai etcd, --etcd-prefix hoặc quyền)"),
    (r"encryption config unreadable: (?P<e>.+)", "không đọc được cấu hình mã hóa: {e}"),
    (r"first provider for secrets is (?P<p>.+?): new Secrets are stored in plain text",
     "phương thức đầu tiên cho Secret là {p}: Secret mới được lưu dạng rõ"),
    (r"(?P<n>\d+) Secret\(s\) stored unencrypted in etcd: (?P<l>.+)", "{n} Secret được lưu không mã hóa trong etcd: {l}"),
    # SLAs
    (r"availability (?P<a_n>.+?)% is below the target (?P<t_n>.+?)% over (?P<w_n>.+?) days \(budget overspent by (?P<m_n>.+?) min\)",
     "độ sẵn sàng {a_n} % thấp hơn mục tiêu {t_n} % trong {w_n} ngày (vượt ngân sách lỗi {m_n} phút)"),
    (r"availability (?P<a_n>.+?)% >= (?P<t_n>.+?)%; (?P<b_n>.+?)% of the error budget left",
     "độ sẵn sàng {a_n} % ≥ {t_n} %; còn {b_n} % ngân sách lỗi"),
    (r"(?P<a_n>.+?)% of successful probes answered within (?P<ms_n>.+?) ms; target (?P<t_n>.+?)%",
     "{a_n} % lượt thăm dò thành công có phản hồi trong {ms_n} ms; mục tiêu {t_n} %"),
    (r"(?P<a_n>.+?)% within (?P<ms_n>.+?) ms >= (?P<t_n>.+?)%", "{a_n} % có phản hồi trong {ms_n} ms ≥ {t_n} %"),
    (r"link availability (?P<a_n>.+?)% is below (?P<t_n>.+?)% over (?P<w_n>.+?) days",
     "độ sẵn sàng của đường truyền {a_n} % thấp hơn {t_n} % trong {w_n} ngày"),
    (r"link availability (?P<a_n>.+?)% >= (?P<t_n>.+?)%", "độ sẵn sàng của đường truyền {a_n} % ≥ {t_n} %"),
    (r"link availability below target", "độ sẵn sàng của đường truyền thấp hơn mục tiêu"),
    (r"availability (?P<a_n>.+?)% >= (?P<t_n>.+?)% over (?P<w_n>.+?) days \(monitored (?P<c_n>.+?)% of it\); (?P<b_n>.+?)% of the error budget left",
     "độ sẵn sàng {a_n} % ≥ {t_n} % trong {w_n} ngày (đã giám sát {c_n} % thời gian); còn {b_n} % ngân sách lỗi"),
    (r"(?P<a_n>.+?)% within (?P<ms_n>.+?) ms >= (?P<t_n>.+?)% over (?P<w_n>.+?) days \(monitored (?P<c_n>.+?)% of it\)",
     "{a_n} % có phản hồi trong {ms_n} ms ≥ {t_n} % trong {w_n} ngày (đã giám sát {c_n} % thời gian)"),
    (r"link availability (?P<a_n>.+?)% >= (?P<t_n>.+?)% over (?P<w_n>.+?) days \(monitored (?P<c_n>.+?)% of it\)",
     "độ sẵn sàng của đường truyền {a_n} % ≥ {t_n} % trong {w_n} ngày (đã giám sát {c_n} % thời gian)"),
    # Prometheus unavailable (checks/sla.py PromUnavailable): the reason of every SLA result then
    (r"Prometheus at (?P<u>\S+?): credentials are only sent over https", "Prometheus tại {u}: thông tin xác thực chỉ được gửi qua https"),
    (r"Prometheus at (?P<u>\S+) refused the credentials \(HTTP (?P<c>\S+)\): check the environment's prometheus\.basic_auth / bearer_token",
     "Prometheus tại {u} từ chối thông tin xác thực (HTTP {c}): kiểm tra prometheus.basic_auth / bearer_token của môi trường"),
    (r"Prometheus at (?P<u>\S+) refused the credentials \(HTTP (?P<c>\S+)\)", "Prometheus tại {u} từ chối thông tin xác thực (HTTP {c})"),
    (r"Prometheus at (?P<u>\S+) refused the credentials: check the environment's prometheus\.basic_auth / bearer_token",
     "Prometheus tại {u} từ chối thông tin xác thực: kiểm tra prometheus.basic_auth / bearer_token của môi trường"),
    (r"Prometheus at (?P<u>\S+) answered HTTP (?P<c>\S+) to (?P<p>\S+)", "Prometheus tại {u} trả lời HTTP {c} cho {p}"),
    (r"Prometheus at (?P<u>\S+?): (?P<why_t>.+?): its certificate is not trusted by (?P<ca>.+?) \(check prometheus\.ca_file\)",
     "Prometheus tại {u}: {why_t}: chứng thư số của máy chủ không được {ca} tin cậy (kiểm tra prometheus.ca_file)"),
    (r"Prometheus at (?P<u>\S+) is unreachable: (?P<e>.+)", "không kết nối được tới Prometheus tại {u}: {e}"),
    (r"Prometheus at (?P<u>\S+) refused the query (?P<q>.+?): (?P<x>.+)", "Prometheus tại {u} từ chối truy vấn {q}: {x}"),
    (r"below the SLO over the window", "thấp hơn mục tiêu SLO trong khoảng thời gian đánh giá"),
    (r"page alerts firing: (?P<l>.+)", "đang có cảnh báo khẩn: {l}"),
    (r"answers within (?P<ms_n>.+?) ms", "tỷ lệ yêu cầu có phản hồi trong {ms_n} ms"),
    (r"(?P<why_t>.+?): no alert firing would prove nothing \(are the rules of infra/render/prometheus\.py loaded\?\)",
     "{why_t}: việc không có cảnh báo không chứng minh được điều gì (các quy tắc của infra/render/prometheus.py đã được nạp chưa?)"),
    (r"(?P<n>\d+) of the (?P<m>\d+) page alert rules for (?P<k>\S+) (?P<i>\S+) are loaded in Prometheus",
     "mới nạp {n}/{m} quy tắc cảnh báo khẩn cho {k} {i} vào Prometheus"),
    (r"page alert rules not evaluating: (?P<l>.+)", "quy tắc cảnh báo khẩn không được thực thi: {l}"),
    (r"series missing: (?P<s>.+?); is the probe configured, Prometheus scraping it and the recording rules loaded\?",
     "thiếu chuỗi số liệu {s}; cần kiểm tra phép thăm dò đã được cấu hình, Prometheus đã thu thập và các quy tắc ghi (recording rules) đã được nạp chưa"),
    (r"insufficient data: observed (?P<m_d>.+?) of the (?P<w_d>.+?) window \((?P<c_n>.+?)% < (?P<min_n>.+?)%\); (?P<what_t>.+?) (?P<v_n>[0-9.]+)% over the monitored time \(target (?P<t_n>.+?)%\), not a verdict over the window",
     "chưa đủ dữ liệu: mới giám sát được {m_d} trong kỳ {w_d} ({c_n} % < {min_n} %); {what_t} {v_n} % trong thời gian được giám sát (mục tiêu {t_n} %), chưa phải kết luận cho cả kỳ"),
    (r"(?P<what_t>.+?) (?P<v_n>[0-9.]+)% over the monitored time, observed (?P<m_d>.+?) of the (?P<w_d>.+?) window \((?P<c_n>.+?)% < (?P<min_n>.+?)%\): the bad time seen already overspends the whole window's error budget by (?P<x_n>.+?) min",
     "{what_t} {v_n} % trong thời gian được giám sát, mới giám sát được {m_d} trong kỳ {w_d} ({c_n} % < {min_n} %): thời gian gián đoạn đã thấy vượt ngân sách lỗi của cả kỳ {x_n} phút"),
    (r"(?P<e>[A-Z][A-Za-z]+(?:Error|Exception|Timeout|Unavailable|Missing)): (?P<m>.+)", "lỗi {e}: {m}"),
]]

# The hub's upstream time, the log server's retention, pending security updates, the API
# servers' admission and the provincial registry (issue 16).
REASONS += [(_p(a), b) for a, b in [
    (r"the hub follows (?P<a>.+?), expected only its upstream (?P<b>.+)",
     "cổng trung tâm theo nguồn thời gian {a}, chỉ được theo nguồn chuẩn {b}"),
    (r"the hub does not serve the WAN's time \(wan\.hub\.ntp_server is (?P<s>.+?)\): that server's own upstream is assessed on it",
     "cổng trung tâm không cung cấp thời gian cho mạng WAN (wan.hub.ntp_server là {s}): nguồn chuẩn của máy chủ đó được đánh giá trên chính nó"),
    (r"the province file names no upstream time source \(wan\.hub\.time_upstream\): the hub serves its own free-running clock",
     "tệp mô tả tỉnh không khai báo nguồn thời gian chuẩn (wan.hub.time_upstream): cổng trung tâm cung cấp thời gian theo đồng hồ tự chạy của chính nó"),
    (r"the hub is free-running: it serves its own clock \(local reference\); its upstream sources (?P<w>.+?): (?P<u>.+)",
     "cổng trung tâm chạy theo đồng hồ riêng: cung cấp thời gian của chính nó (tham chiếu nội bộ); nguồn chuẩn {w}: {u}"),
    (r"the hub's reference is (?P<r>.+?), not one of its upstream sources (?P<w>.+?): (?P<u>.+)",
     "tham chiếu thời gian của cổng trung tâm là {r}, không phải một trong các nguồn chuẩn {w}: {u}"),
    (r"the central log server is (?P<s>.+?), not the hub: its retention is read on that server \(assessed by hand\)",
     "máy chủ nhật ký tập trung là {s}, không phải cổng trung tâm: thời gian lưu trữ được đánh giá trực tiếp trên máy chủ đó"),
    (r"the log server keeps (?P<l>\S+) (?P<d_n>.+?) days, (?P<n_n>.+?) required \((?P<r>.+)\)",
     "máy chủ nhật ký chỉ lưu {l} {d_n} ngày, yêu cầu {n_n} ngày ({r})"),
    (r"(?P<n>\d+) security update\(s\) pending: (?P<l>.+)", "còn {n} bản vá bảo mật chưa cài: {l}"),
    (r"apt has no package lists on this host \(apt-get update never ran against a mirror\): pending security updates cannot be known",
     "apt trên máy này chưa có danh sách gói (chưa từng chạy apt-get update với kho gói): không biết được còn bản vá bảo mật nào chưa cài"),
    (r"apt's package lists were last updated (?P<a_n>.+?) days ago \(> (?P<m_n>.+?)\): they cannot show that no security update is pending",
     "danh sách gói của apt được cập nhật lần cuối cách đây {a_n} ngày (quá {m_n} ngày): không chứng minh được là không còn bản vá bảo mật chưa cài"),
    (r"the environment gives no API server flags: where the API server listens is unknown",
     "môi trường không cung cấp tham số của máy chủ API: không xác định được máy chủ API lắng nghe ở đâu"),
    (r"the API server's flags could not be read: (?P<e>.+)", "không đọc được tham số của máy chủ API: {e}"),
    (r"--bind-address (?P<a>.+?) is not an address", "--bind-address {a} không phải là một địa chỉ"),
    (r"the API server listens on every address \((?P<a>.+?)\): any zone that routes to its node reaches it",
     "máy chủ API lắng nghe trên mọi địa chỉ ({a}): mọi vùng mạng có đường tới máy đều truy cập được"),
    (r"the API server listens on (?P<a>.+?), outside the management segment (?P<m>.+)",
     "máy chủ API lắng nghe trên {a}, ngoài dải địa chỉ vùng quản trị {m}"),
    (r"the province file declares no provincial registry \(datacenter\.registry\): there is nothing to compare the images with",
     "tệp mô tả tỉnh không khai báo kho ảnh của tỉnh (datacenter.registry): không có gì để đối chiếu các ảnh container"),
]]
RATIONALE_VI.update({
    "DCOPS-NTP-003": "Mọi máy đầu cuối lấy thời gian từ cổng trung tâm; nếu cổng trung tâm chạy theo đồng hồ riêng, cả mạng WAN thống nhất với nhau theo một thời gian sai và nhật ký mất giá trị làm bằng chứng. Cấp độ 3 yêu cầu thời gian đồng bộ với nguồn chuẩn do tỉnh chỉ định (nguồn thời gian chuẩn quốc gia hoặc thiết bị GPS/NTP của trung tâm).",
    "DCOPS-LOG-004": "Cấp độ 3 yêu cầu nhật ký truy cập, quản trị và sự kiện an toàn được lưu tập trung ít nhất 3 tháng (cấp độ 2: 1 tháng, cấp độ 4: 6 tháng); tệp mô tả tỉnh khai báo thời gian lưu (datacenter.log_retention_days) và cấu hình xoay vòng nhật ký trên máy chủ nhật ký không được xóa sớm hơn.",
    "DCOPS-K8S-015": "Cấp độ 3 yêu cầu chỉ quản trị hệ thống từ dải địa chỉ của vùng quản trị. Máy chủ API là giao diện quản trị của cụm; nó phải lắng nghe trên một địa chỉ của vùng quản trị (hoặc loopback, chỉ được công bố ra mạng quản trị), không lắng nghe trên mọi giao diện. Kiểm tra đọc dòng lệnh của chính máy chủ API (bằng chứng do môi trường cung cấp); tường lửa đặt trước máy chủ API và các máy chủ trung tâm dữ liệu ngoài mạng WAN được đánh giá trực tiếp.",
    "DCOPS-UPD-001": "Cấp độ 3 yêu cầu khắc phục các lỗ hổng đã biết; bản vá bảo mật đã được phát hành mà chưa cài là điểm yếu đã biết và sửa được. Kiểm tra đọc dữ liệu của chính apt trên máy (không tải gì về); danh sách gói cũ hơn một tuần không chứng minh được là không còn bản vá nào, nên không cho kết quả đạt.",
})
EVIDENCE_LABELS.update({
    "upstream": "Nguồn thời gian chuẩn khai báo", "selected": "Nguồn đang được chọn", "reference_id": "Mã tham chiếu thời gian",
    "stratum": "Tầng thời gian (stratum)", "ntp_server": "Máy chủ thời gian",
    "log_server": "Máy chủ nhật ký tập trung", "required_days": "Số ngày lưu yêu cầu", "province_days": "Số ngày lưu theo tệp mô tả tỉnh",
    "level_minimum_days": "Số ngày lưu tối thiểu theo cấp độ", "log": "Tệp nhật ký", "rotation": "Quy tắc xoay vòng nhật ký",
    "logrotate_installed": "Đã cài logrotate",
    "lists_updated": "Thời điểm cập nhật danh sách gói", "lists_age_days": "Tuổi của danh sách gói (ngày)",
    "max_list_age_days": "Tuổi tối đa của danh sách gói (ngày)", "lists": "Danh sách gói của apt",
    "pending_security": "Bản vá bảo mật chưa cài", "pending_other": "Số bản cập nhật khác chưa cài",
    "bind_address": "Địa chỉ lắng nghe của máy chủ API", "bind_address_flag": "Tham số --bind-address",
    "secure_port": "Cổng của máy chủ API",
})

# The subject words of the SLA coverage reasons ('availability', 'link availability', ...).
PHRASES.update({
    "availability": "độ sẵn sàng", "link availability": "độ sẵn sàng của đường truyền",
    "latency": "tỷ lệ yêu cầu có độ trễ dưới ngưỡng", "fast requests": "tỷ lệ yêu cầu có độ trễ dưới ngưỡng",
})

def _num_vi(v: str) -> str:
    """A number written the Vietnamese way (decimal comma); anything else unchanged."""
    return v.replace(".", ",") if re.fullmatch(r"-?\d+\.\d+", v) else v


def _duration_vi(v: str) -> str:
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?) (h|days|day|min|s)", v)
    if not m:
        return v
    unit = {"h": "giờ", "days": "ngày", "day": "ngày", "min": "phút", "s": "giây"}[m.group(2)]
    return f"{_num_vi(m.group(1))} {unit}"


_KIND_LIST = re.compile(r"^[a-z_]+(, [a-z_]+)*$")


def _kinds(text: str) -> list[Seg] | None:
    if not _KIND_LIST.match(text):
        return None
    parts = [KINDS_VI.get(k) for k in text.split(", ")]
    return None if None in parts else [Seg(", ".join(parts), False)]


@lru_cache(maxsize=4096)
def _translate(text: str, depth: int = 0, placeholder: str | None = None) -> tuple[Seg, ...] | None:
    text = text.strip()
    if placeholder is not None and text == placeholder:
        return (Seg(text, True),)
    if text in PHRASES:
        return (Seg(PHRASES[text], False),)
    for rx, vi in REASONS:
        m = rx.fullmatch(text)
        if not m:
            continue
        out: list[Seg] = []
        ok = True
        for lit, field in _template(vi):
            if lit:
                out.append(Seg(lit, False))
            if field is None:
                continue
            value = m.group(field)
            if field.endswith("_t"):
                sub = _translate(value, depth + 1, placeholder) if depth < 4 else None
                if sub is None:
                    ok = False
                    break
                out.extend(sub)
            elif field.endswith("_n"):
                out.append(Seg(_num_vi(value), True))
            elif field.endswith("_d"):
                out.append(Seg(_duration_vi(value), True))
            elif field.endswith("_k"):
                sub = (Seg(value, True),) if value == placeholder else _kinds(value)
                if sub is None:
                    ok = False
                    break
                out.extend(sub)
            else:
                out.append(Seg(value, True))
        if ok:
            return tuple(out)
    # a list of problems: each part on its own
    for sep in ("; ", ", "):
        if sep in text:
            parts = [_translate(p, depth + 1, placeholder) for p in text.split(sep)] if depth < 4 else [None]
            if all(p is not None for p in parts):
                out = []
                for i, p in enumerate(parts):
                    if i:
                        out.append(Seg(sep, False))
                    out.extend(p)
                return tuple(out)
    return None


@lru_cache(maxsize=256)
def _template(vi: str) -> list[tuple[str, str | None]]:
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", vi):
        out.append((vi[pos:m.start()], m.group(1)))
        pos = m.end()
    out.append((vi[pos:], None))
    return out


def translate_reason(text: str, placeholder: str | None = None) -> list[Seg] | None:
    """The reason in Vietnamese as segments (values verbatim), or None when no pattern knows it.

    ``placeholder``: a value that stands for any value or phrase (tests that check every
    reason template written in the controls' code use it for the template's fields)."""
    if not text:
        return []
    r = _translate(text, 0, placeholder)
    return list(r) if r is not None else None


# LGSP, the door to the national systems (DCOPS-K8S-014, issue 19).
REASONS[:0] = [(_p(a), b) for a, b in [
    (r"national endpoints reachable beyond LGSP and the declared exceptions: (?P<l>.+)",
     "có namespace ngoài LGSP và các ngoại lệ đã khai báo kết nối được tới hệ thống quốc gia: {l}"),
    (r"only LGSP and the declared exceptions reach national endpoints \((?P<n_n>\d+) namespace\(s\) checked\)",
     "chỉ LGSP và các ngoại lệ đã khai báo kết nối được tới hệ thống quốc gia (đã kiểm tra {n_n} namespace)"),
    (r"the province declares no national endpoints", "tệp mô tả tỉnh không khai báo hệ thống quốc gia nào"),
]]
RATIONALE_VI["DCOPS-K8S-014"] = (
    "LGSP là cửa duy nhất của tỉnh tới NDXP và các hệ thống quốc gia khác; đường kết nối trực tiếp từ nền tảng khác "
    "bỏ qua kiểm soát và nhật ký của nền tảng tích hợp, chỉ được phép khi là ngoại lệ được khai báo kèm lý do trong "
    "tệp mô tả tỉnh. Kiểm tra trên NetworkPolicy sinh từ tệp tỉnh và NetworkPolicy đang chạy của mọi namespace; "
    "kết nối được tới địa chỉ ở bất kỳ cổng nào đều tính, và namespace nền tảng không giới hạn lưu lượng ra "
    "thì kết nối được tới mọi địa chỉ.")
EVIDENCE_LABELS.update({
    "exceptions": "Ngoại lệ kết nối trực tiếp đã khai báo",
    "rendered": "Theo cấu hình sinh từ tệp mô tả tỉnh",
    "live": "Trên cụm đang chạy",
    "beyond": "Kết nối ngoài phạm vi cho phép",
})


# Backups with Velero and restore tests (DCOPS-BAK-*, issue 19).
REASONS[:0] = [(_p(a), b) for a, b in [
    (r"no BackupStorageLocation (?P<l>\S+) in (?P<n>\S+)", "không có nơi lưu bản sao lưu (BackupStorageLocation) {l} trong {n}"),
    (r"the province asks for encrypted backups but the location asks the store for no encryption",
     "tệp mô tả tỉnh yêu cầu mã hóa bản sao lưu nhưng nơi lưu không yêu cầu kho lưu trữ mã hóa"),
    (r"the location writes to bucket (?P<a>\S+) instead of the environment's backup target (?P<b>\S+)",
     "nơi lưu ghi vào bucket {a} thay vì kho sao lưu của môi trường {b}"),
    (r"the province file does not keep backups on separate infrastructure \(separate_infrastructure: false\)",
     "tệp mô tả tỉnh không lưu bản sao lưu trên hạ tầng tách biệt (separate_infrastructure: false)"),
    (r"the environment declares no backup target \(backup\.site\): where backups go is unknown",
     "môi trường không khai báo kho sao lưu (backup.site): không biết bản sao lưu được lưu ở đâu"),
    (r"backups of (?P<a>\S+)'s platforms are kept on (?P<b>\S+) itself \(backup\.site\) and not on separate infrastructure",
     "bản sao lưu các nền tảng của {a} được lưu ngay trên {b} (backup.site), không trên hạ tầng tách biệt"),
    (r"Schedule (?P<s>\S+) missing", "thiếu lịch sao lưu (Schedule) {s}"),
    (r"Schedule (?P<s>\S+): (?P<d_t>.+)", "lịch sao lưu (Schedule) {s}: {d_t}"),
    (r"schedule (?P<a>.+?) \(province (?P<b>.+)\)", "lịch chạy {a} (tệp mô tả tỉnh: {b})"),
    (r"ttl (?P<a>.+?) \(province (?P<b>.+)\)", "thời gian giữ bản sao (ttl) {a} (tệp mô tả tỉnh: {b})"),
    (r"namespaces (?P<a>.+?) \(want (?P<b>.+)\)", "namespace {a} (yêu cầu {b})"),
    (r"location (?P<a>.+?) \(want (?P<b>.+)\)", "nơi lưu {a} (yêu cầu {b})"),
    (r"(?P<n_n>\d+) schedule\(s\) match the province \(location (?P<l>\S+)\)",
     "{n_n} lịch sao lưu khớp với tệp mô tả tỉnh (nơi lưu {l})"),
    (r"applies at levels (?P<l>.+?); the province is level (?P<n>.+)", "áp dụng cho cấp độ {l}; tỉnh ở cấp độ {n}"),
    (r"cannot read Velero's objects on (?P<c>\S+): (?P<e>.+)", "không đọc được các đối tượng của Velero trên {c}: {e}"),
    (r"cannot read Velero's backups on (?P<c>\S+): (?P<e>.+)", "không đọc được các bản sao lưu của Velero trên {c}: {e}"),
    (r"the province's backup schedule never runs", "lịch sao lưu trong tệp mô tả tỉnh không bao giờ chạy"),
    (r"no completed backup of (?P<p>\S+) on (?P<c>\S+)", "không có bản sao lưu hoàn tất nào của {p} trên {c}"),
    (r"last successful backup (?P<a_n>\S+) h old \(limit (?P<b_n>\S+) h\)",
     "bản sao lưu thành công gần nhất đã {a_n} giờ (giới hạn {b_n} giờ)"),
    (r"no records directory \(the stack's work dir\) to read", "không có thư mục hồ sơ (thư mục làm việc của stack) để đọc"),
    (r"the restore test's record cannot be read: (?P<e>.+)", "không đọc được hồ sơ thử khôi phục: {e}"),
    (r"no restore test recorded for (?P<p>\S+) \(run `dcops dr restore-test --platform (?P<q>\S+)`\)",
     "chưa có hồ sơ thử khôi phục nào cho {p} (chạy `dcops dr restore-test --platform {q}`)"),
    (r"the last restore test \((?P<d>.+?)\) did not pass: (?P<r_t>.+)", "lần thử khôi phục gần nhất ({d}) không đạt: {r_t}"),
    (r"the last restore test \((?P<d>.+?)\) did not pass: (?P<r>.+)", "lần thử khôi phục gần nhất ({d}) không đạt: {r}"),
    (r"last restore test (?P<a_n>\S+) days old \(interval (?P<b_n>\S+) days\)",
     "lần thử khôi phục gần nhất cách đây {a_n} ngày (chu kỳ {b_n} ngày)"),
    (r"(?P<k>\S+): (?P<a_n>\d+) of (?P<b_n>\d+) restored", "{k}: khôi phục được {a_n}/{b_n}"),
    (r"the data marker ConfigMap (?P<m>\S+) did not come back", "dấu dữ liệu (ConfigMap {m}) không được khôi phục"),
    (r"the data marker came back with another token than the backup's", "dấu dữ liệu khôi phục mang mã khác với mã của bản sao lưu"),
    (r"the data marker is newer than the backup", "dấu dữ liệu mới hơn bản sao lưu"),
    (r"the data marker has no time", "dấu dữ liệu không có thời điểm ghi"),
    (r"Velero's restore ended (?P<p>\S+) \((?P<e_n>\d+) errors, (?P<w_n>\d+) warnings\)",
     "Velero kết thúc khôi phục với trạng thái {p} ({e_n} lỗi, {w_n} cảnh báo)"),
]]
PHRASES.update({"paused": "đang tạm dừng", "no platform on this cluster": "cụm này không có nền tảng nào"})
RATIONALE_VI.update({
    "DCOPS-BAK-001": "Cấp độ 3 yêu cầu sao lưu tự động trên hạ tầng tách biệt với hệ thống đang vận hành; lịch sao lưu lệch khỏi lịch chạy hoặc thời gian giữ của tệp mô tả tỉnh, kho lưu không mã hóa, hay bản sao nằm ngay trên cụm mà nó bảo vệ đều không giúp khôi phục khi mất trung tâm dữ liệu chính.",
    "DCOPS-BAK-002": "Có lịch sao lưu nhưng các lần sao lưu lỗi hoặc ngừng chạy thì không còn gì để khôi phục; bản sao lưu hoàn tất gần nhất phải mới hơn khoảng cách dài nhất giữa hai lần chạy của lịch cộng một giờ.",
    "DCOPS-BAK-003": "Bản sao lưu chỉ có giá trị khi khôi phục được; cấp độ 3 yêu cầu thử khôi phục định kỳ. Lần thử gần nhất (khôi phục vào một namespace tạm trên cụm dự phòng, đếm đối tượng, tìm thấy dấu dữ liệu) phải đạt và cách đây không quá restore_test_interval_days ngày.",
})
EVIDENCE_LABELS.update({
    "province": "Theo tệp mô tả tỉnh", "location": "Nơi lưu bản sao lưu", "backup_site": "Vị trí kho sao lưu",
    "schedules": "Lịch sao lưu", "backups_seen": "Số bản sao lưu thấy được", "completed": "Số bản sao lưu hoàn tất",
    "limit_hours": "Giới hạn tuổi (giờ)", "schedule": "Lịch chạy", "last": "Bản sao lưu gần nhất",
    "completed_at": "Thời điểm hoàn tất", "age_hours": "Tuổi (giờ)", "interval_days": "Chu kỳ thử khôi phục (ngày)",
    "record": "Hồ sơ", "date": "Ngày", "age_days": "Tuổi (ngày)", "outcome": "Kết quả", "backup": "Bản sao lưu",
    "target_cluster": "Cụm khôi phục", "reasons": "Lý do", "cluster": "Cụm",
})


# Named administrators, MFA, sudo rules and idle sessions (DCOPS-USR-001/004/005, DCOPS-SSH-005/006/012, issue 16).
REASONS[:0] = [(_p(a), b) for a, b in [
    (r"connections without a session are kept open \(UnusedConnectionTimeout (?P<v>.+?), limit (?P<l_n>.+?)s\)",
     "kết nối không còn phiên làm việc vẫn được giữ mở (UnusedConnectionTimeout {v}, giới hạn {l_n} giây)"),
    (r"the province file names no administrator \(wan\.administrators\): no login has a second factor",
     "tệp mô tả tỉnh không khai báo quản trị viên nào (wan.administrators): không có lần đăng nhập nào dùng yếu tố xác thực thứ hai"),
    (r"the province file names no administrator \(wan\.administrators\): the endpoints are administered through a shared account",
     "tệp mô tả tỉnh không khai báo quản trị viên nào (wan.administrators): các máy đầu cuối được quản trị qua một tài khoản dùng chung"),
    (r"(?P<f>\S+) does not require pam_google_authenticator \(without nullok\)",
     "{f} không bắt buộc pam_google_authenticator (không có nullok)"),
    (r"pam_google_authenticator\.so is not installed", "chưa cài đặt pam_google_authenticator.so"),
    (r"sshd UsePAM is (?P<v>.+)", "UsePAM của sshd là {v}"),
    (r"(?P<u>\S+): sshd accepts (?P<m>.+?) \(want publickey,keyboard-interactive\)",
     "{u}: sshd chấp nhận {m} (yêu cầu publickey,keyboard-interactive)"),
    (r"(?P<u>\S+): keyboard-interactive is off, so the TOTP step cannot run",
     "{u}: keyboard-interactive bị tắt nên bước nhập mã TOTP không chạy được"),
    (r"(?P<u>\S+): no usable TOTP secret \((?P<s>.*)\)", "{u}: không có khóa bí mật TOTP dùng được ({s})"),
    (r"(?P<u>\S+): keys other than FIDO security keys are accepted",
     "{u}: chấp nhận cả khóa không phải khóa bảo mật FIDO"),
    (r"members of (?P<g>\S+) not named in the province file: (?P<l>.+)",
     "thành viên của nhóm {g} không có tên trong tệp mô tả tỉnh: {l}"),
    (r"(?P<u>\S+): no account", "{u}: không có tài khoản"),
    (r"(?P<u>\S+): no login shell \((?P<s>.+)\)", "{u}: không có shell đăng nhập ({s})"),
    (r"(?P<u>\S+): not in (?P<g>\S+)", "{u}: không thuộc nhóm {g}"),
    (r"(?P<u>\S+): no keys file (?P<f>\S+)", "{u}: không có tệp khóa {f}"),
    (r"(?P<u>\S+): keys differ from the province file \((?P<a_n>\d+) unknown, (?P<b_n>\d+) missing\)",
     "{u}: khóa khác với tệp mô tả tỉnh ({a_n} khóa lạ, thiếu {b_n} khóa)"),
    (r"sudo runs every command without authentication for: (?P<l>.+)",
     "sudo cho chạy mọi lệnh mà không cần xác thực với: {l}"),
    (r"`(?P<c>.+?)` needs root, and the evidence collector did not answer it on (?P<h>\S+): (?P<e>.+)",
     "`{c}` cần quyền root và chương trình thu thập bằng chứng không trả lời lệnh này trên {h}: {e}"),
    (r"the sudo rules could not be read on (?P<h>\S+) \(no /etc/sudoers in the answer\)",
     "không đọc được các quy tắc sudo trên {h} (câu trả lời không có /etc/sudoers)"),
    (r"`(?P<c>.+?)` printed no configuration", "`{c}` không in ra cấu hình nào"),
]]
RATIONALE_VI.update({
    "DCOPS-SSH-005": "Chỉ các quản trị viên định danh trong tệp mô tả tỉnh và hai tài khoản dịch vụ (của việc triển khai và của việc kiểm tra) được đăng nhập; mọi tài khoản khác, kể cả tài khoản do gói phần mềm hoặc kẻ xâm nhập tạo ra, đều bị từ chối.",
    "DCOPS-SSH-006": "Cấp độ 3 yêu cầu tự động ngắt phiên quản trị không hoạt động; một phiên bị bỏ quên trên máy của người vận hành là một cửa ngỏ. ClientAliveInterval chỉ ngắt máy khách đã chết, nên kiểm tra đọc ChannelTimeout cho phiên làm việc và UnusedConnectionTimeout của OpenSSH 9.2 theo thời gian wan.admin_idle_timeout_s của tỉnh.",
    "DCOPS-SSH-012": "Cấp độ 3 yêu cầu xác thực đa yếu tố đối với quản trị viên. Mỗi quản trị viên định danh đăng nhập bằng khóa SSH cùng yếu tố thứ hai: mã TOTP qua PAM (libpam-google-authenticator, bắt buộc, không có nullok) hoặc khóa bảo mật FIDO; lộ khóa SSH thôi thì không mở được gì. Tài khoản triển khai và tài khoản kiểm tra chỉ dùng khóa: là tài khoản dịch vụ không tương tác, bị giới hạn bởi quy tắc sudo.",
    "DCOPS-USR-001": "Mọi tài khoản đăng nhập được đều phải có lý do (root, tài khoản dịch vụ của việc triển khai và kiểm tra, các quản trị viên định danh trong tệp mô tả tỉnh) và nhóm quản trị chỉ gồm các quản trị viên đó; tài khoản của gói phần mềm và dịch vụ dùng nologin.",
    "DCOPS-USR-004": "Cấp độ 3 yêu cầu mọi thao tác quản trị gắn được với một người. Mỗi quản trị viên trong tệp mô tả tỉnh có tài khoản riêng trên mọi máy đầu cuối (có shell đăng nhập, thuộc nhóm dcops-admins, đúng các khóa SSH khai báo trong tệp mô tả tỉnh); tệp mô tả tỉnh không khai báo quản trị viên nào nghĩa là các máy được quản trị qua tài khoản dùng chung, và kiểm tra không đạt.",
    "DCOPS-USR-005": "Quy tắc sudo cho chạy mọi lệnh không cần xác thực (NOPASSWD cho mọi lệnh, hoặc Defaults !authenticate) biến bất kỳ ai giữ khóa của tài khoản thành root mà không cần xác thực thêm. Quản trị viên xác thực với sudo bằng mã TOTP, tài khoản triển khai bằng mật khẩu, tài khoản kiểm tra chỉ được chạy chương trình thu thập bằng chứng cố định, không tham số.",
})
EVIDENCE_LABELS.update({
    "session_timeout_s": "Thời gian chờ của phiên (giây)", "per_channel_type_s": "Thời gian chờ theo loại kênh (giây)", "unusedconnectiontimeout_s": "Thời gian giữ kết nối không có phiên (giây)",
    "administrators": "Quản trị viên", "pam": "Cấu hình PAM", "nopasswd_all": "Quy tắc NOPASSWD: ALL",
    "no_authenticate": "Quy tắc bỏ xác thực (!authenticate)", "nopasswd_other": "Quy tắc NOPASSWD khác",
    "files": "Tệp", "dcops-admins": "Thành viên nhóm dcops-admins",
})


# Two hubs (issue 18): DCOPS-WG-001 per tunnel (wg0 to the hub, wg1 to the standby hub).
PHRASES.update({"the hub": "cổng trung tâm", "the standby hub": "cổng trung tâm dự phòng"})
REASONS[:0] = [(_p(a), b) for a, b in [
    (r"no WireGuard interface (?P<i>\S+) to (?P<w_t>.+?): (?P<e>.+)", "không có giao diện WireGuard {i} tới {w_t}: {e}"),
    (r"(?P<i>\S+) address (?P<a>.+?), expected (?P<b>\S+/32)", "địa chỉ của {i} là {a}, yêu cầu là {b}"),
    (r"(?P<i>\S+): (?P<n>\d+) peers, expected (?P<w_t>.+?) only", "{i}: có {n} máy ngang hàng, chỉ được có {w_t}"),
    (r"(?P<i>\S+): peer endpoint (?P<a>.+?), expected (?P<b>.+)",
     "{i}: điểm kết nối của máy ngang hàng là {a}, yêu cầu là {b}"),
    (r"(?P<i>\S+): allowed IPs (?P<a>.+?), expected (?P<b>.+)",
     "{i}: dải địa chỉ cho phép (allowed IPs) là {a}, yêu cầu là {b}"),
    (r"(?P<i>\S+): peer public key is not (?P<w_t>.+?)'s", "{i}: khóa công khai của máy ngang hàng không phải của {w_t}"),
    (r"(?P<w_t>the hub|the standby hub)'s public key could not be read from it \((?P<e>.+?)\)",
     "không đọc được khóa công khai của {w_t} ({e})"),
    (r"(?P<l_t>.+): the peer cannot be shown to be the hub",
     "{l_t}: không chứng minh được máy ngang hàng là cổng trung tâm"),
]]
EVIDENCE_LABELS.update({"standby": "Đường hầm tới cổng trung tâm dự phòng"})


# Two hubs (issue 18): time, logs and handshakes of both hubs (DCOPS-NTP-001/002/003, DCOPS-WG-002).
REASONS[:0] = [(_p(a), b) for a, b in [
    (r"(?P<i>\S+) to (?P<w_t>.+?): (?P<r_t>no peer|no handshake within .+)", "{i} tới {w_t}: {r_t}"),
    (r"not synchronised to (?P<a>\S+) or (?P<b>\S+) \(leap status (?P<l>.+?), selected (?P<x>.+?)\)",
     "không đồng bộ thời gian với {a} hoặc {b} (trạng thái leap {l}, nguồn đang chọn {x})"),
    (r"time sources (?P<a>.+?), expected exactly the hubs' (?P<b>.+)",
     "nguồn thời gian là {a}, yêu cầu đúng các máy chủ thời gian của các cổng trung tâm {b}"),
    (r"the hub does not serve the WAN's time \((?P<f>\S+) is (?P<s>.+?)\): that server's own upstream is assessed on it",
     "cổng trung tâm không cung cấp thời gian cho mạng WAN ({f} là {s}): nguồn chuẩn của máy chủ đó được đánh giá trên chính nó"),
    (r"the province file names no upstream time source \((?P<f>\S+)\): the hub serves its own free-running clock",
     "tệp mô tả tỉnh không khai báo nguồn thời gian chuẩn ({f}): cổng trung tâm cung cấp thời gian theo đồng hồ tự chạy của chính nó"),
]]
