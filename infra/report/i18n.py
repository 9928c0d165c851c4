"""Every label of the report, in Vietnamese and English.

Templates call ``t("key")``; an unknown key is an error (never a silently
missing label).  Numbers and dates follow the language: Vietnamese writes
``99,95 %`` and ``05/03/2026``, English ``99.95%`` and ``2026-03-05``.
"""

from __future__ import annotations

import datetime as _dt

LANGS = ("vi", "en")

LABELS: dict[str, tuple[str, str]] = {
    # document
    "doc_title": ("Báo cáo kiểm tra an toàn thông tin và chất lượng dịch vụ", "Security and service-level audit report"),
    "doc_subtitle": ("Trung tâm tích hợp dữ liệu và mạng truyền số liệu chuyên dùng",
                     "Data integration center and dedicated data network"),
    "contents": ("Mục lục", "Contents"),
    "page": ("Trang", "Page"),
    "of": ("trên", "of"),
    # cover
    "cover": ("Trang bìa", "Cover"),
    "province": ("Tỉnh", "Province"),
    "province_code": ("Mã tỉnh", "Province code"),
    "datacenter": ("Trung tâm dữ liệu", "Data center"),
    "report_date": ("Ngày lập báo cáo", "Report date"),
    "results_date": ("Thời điểm kiểm tra", "Checks run at"),
    "scope": ("Phạm vi", "Scope"),
    "scope_text": ("{clusters} cụm, {platforms} nền tảng dùng chung, {sites} đơn vị trên mạng WAN, {controls} biện pháp kiểm soát",
                   "{clusters} clusters, {platforms} shared platforms, {sites} units on the WAN, {controls} controls"),
    "security_level": ("Cấp độ an toàn hệ thống thông tin", "Information-system security level"),
    "audit_standard": ("Tiêu chuẩn đánh giá", "Audited against"),
    "sla_window": ("Khoảng thời gian SLA", "SLA window"),
    "days": ("ngày", "days"),
    "dcops_version": ("Phiên bản dcops", "dcops version"),
    "province_file": ("Tệp mô tả tỉnh", "Province file"),
    "province_commit": ("Commit của tệp mô tả tỉnh", "Commit of the province file"),
    "not_in_git": ("không nằm trong kho git", "not in a git repository"),
    "uncommitted": ("có thay đổi chưa commit", "has uncommitted changes"),
    "results_file": ("Tệp kết quả kiểm tra", "Check results file"),
    "previous_file": ("Báo cáo kỳ trước", "Previous report"),
    "none": ("không có", "none"),
    "language": ("Ngôn ngữ", "Language"),
    "secrets_note": ("Các giá trị bí mật (khóa riêng, mật khẩu, cụm mật khẩu) đã được che trong báo cáo này.",
                     "Secret values (private keys, passwords, passphrases) are redacted in this report."),
    # summary
    "summary": ("Tóm tắt", "Summary"),
    "pass_rate_by_severity": ("Tỷ lệ đạt theo mức độ nghiêm trọng", "Pass rate by severity"),
    "severity": ("Mức độ", "Severity"),
    "results": ("Kết quả", "Results"),
    "pass_rate": ("Tỷ lệ đạt", "Pass rate"),
    "pass_rate_note": ("Tỷ lệ đạt = đạt / (đạt + không đạt + lỗi); kết quả bỏ qua không tính.",
                       "Pass rate = pass / (pass + fail + error); skipped results are not counted."),
    "total": ("Tổng", "Total"),
    "targets_vs_results": ("Chỉ tiêu của tỉnh và kết quả", "Province targets and results"),
    "indicator": ("Chỉ tiêu", "Indicator"),
    "target": ("Mục tiêu", "Target"),
    "actual": ("Thực tế", "Actual"),
    "met": ("Đạt chỉ tiêu", "Met"),
    "not_met": ("Chưa đạt chỉ tiêu", "Not met"),
    "sites_connected": ("Đơn vị kết nối mạng chuyên dùng", "Units connected to the dedicated network"),
    "sites_compliant": ("Đơn vị tuân thủ đầy đủ", "Units fully compliant"),
    "platforms_meeting_sla": ("Nền tảng đạt SLA", "Platforms meeting their SLA"),
    "sites_meeting_sla": ("Đơn vị có đường truyền đạt SLA", "Units whose link meets its SLA"),
    "n_of_m": ("{n}/{m}", "{n} of {m}"),
    "no_data": ("không có dữ liệu", "no data"),
    "headline_failures": ("Kết quả không đạt và lỗi", "Failures and errors"),
    "controls_failing": ("Biện pháp kiểm soát có kết quả không đạt", "Controls with a failing result"),
    "connected_note": ("Đơn vị được coi là kết nối khi các kiểm tra đường truyền (WireGuard, thăm dò) đạt, hoặc khi không có kiểm tra đó, khi máy của đơn vị trả lời các kiểm tra.",
                       "A unit counts as connected when its link checks (WireGuard, probes) pass or, where it has none, when its host answered the checks."),
    # inventory
    "inventory": ("Danh mục hạ tầng", "Inventory"),
    "clusters": ("Cụm Kubernetes", "Kubernetes clusters"),
    "node_pools": ("Nhóm máy chủ (node pool)", "Node pools"),
    "segments": ("Vùng mạng", "Network segments"),
    "storage": ("Lưu trữ", "Storage"),
    "storage_classes": ("Lớp lưu trữ", "Storage classes"),
    "backup": ("Sao lưu", "Backup"),
    "platforms": ("Nền tảng dùng chung", "Shared platforms"),
    "sites": ("Đơn vị trên mạng WAN", "Units on the WAN"),
    "national_endpoints": ("Kết nối hệ thống quốc gia", "National systems"),
    "stack_outputs": ("Đầu ra của stack Pulumi", "Pulumi stack outputs"),
    "stack_resources": ("Tài nguyên trong trạng thái Pulumi", "Resources in the Pulumi state"),
    "resource_type": ("Loại tài nguyên", "Resource type"),
    "count": ("Số lượng", "Count"),
    "key": ("Khóa", "Key"),
    "value": ("Giá trị", "Value"),
    "id": ("Mã", "Id"),
    "name": ("Tên", "Name"),
    "role": ("Vai trò", "Role"),
    "role_primary": ("Chính", "Primary"),
    "role_dr": ("Dự phòng thảm họa", "Disaster recovery"),
    "k8s_version": ("Phiên bản Kubernetes", "Kubernetes version"),
    "nodes": ("Số máy", "Nodes"),
    "cpu_cores": ("CPU (lõi)", "CPU (cores)"),
    "memory_gib": ("Bộ nhớ (GiB)", "Memory (GiB)"),
    "cluster": ("Cụm", "Cluster"),
    "pool": ("Nhóm", "Pool"),
    "segment": ("Vùng mạng", "Segment"),
    "taints": ("Taint", "Taints"),
    "zone": ("Phân vùng", "Zone"),
    "cidr": ("Dải địa chỉ", "Address range"),
    "vlan": ("VLAN", "VLAN"),
    "backend": ("Công nghệ", "Backend"),
    "replication": ("Số bản sao", "Replicas"),
    "reclaim_policy": ("Chính sách thu hồi", "Reclaim policy"),
    "default": ("Mặc định", "Default"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "schedule": ("Lịch", "Schedule"),
    "retention_days": ("Thời gian lưu (ngày)", "Retention (days)"),
    "backup_target": ("Nơi lưu bản sao", "Backup target"),
    "separate_infra": ("Hạ tầng tách biệt", "Separate infrastructure"),
    "restore_test": ("Thử khôi phục (ngày)", "Restore test (days)"),
    "encrypted": ("Mã hóa", "Encrypted"),
    "log_retention": ("Thời gian lưu nhật ký (ngày)", "Log retention (days)"),
    "kind": ("Loại", "Kind"),
    "replicas": ("Số bản chạy", "Replicas"),
    "address": ("Địa chỉ", "Address"),
    "slo": ("Mục tiêu SLO", "SLO"),
    "level": ("Cấp độ", "Level"),
    "volumes": ("Ổ dữ liệu", "Volumes"),
    "depends_on": ("Phụ thuộc", "Depends on"),
    "tier": ("Cấp", "Tier"),
    "parent": ("Đơn vị cấp trên", "Parent"),
    "lan": ("Mạng LAN", "LAN"),
    "tunnel_address": ("Địa chỉ đường hầm", "Tunnel address"),
    "reach": ("Truy cập nền tảng", "Reaches"),
    "ports": ("Cổng", "Ports"),
    "sites_by_tier": ("Số đơn vị theo cấp", "Units by tier"),
    # controls
    "controls": ("Kết quả từng biện pháp kiểm soát", "Results of every control"),
    "controls_intro": ("Các biện pháp có kết quả không đạt hoặc lỗi được trình bày trước.",
                       "Controls with failures or errors come first."),
    "control": ("Biện pháp kiểm soát", "Control"),
    "rationale": ("Cơ sở yêu cầu", "Rationale"),
    "references": ("Tham chiếu", "References"),
    "ref_tcvn11930": ("TCVN 11930:2017", "TCVN 11930:2017"),
    "ref_tcvn14423": ("TCVN 14423:2026", "TCVN 14423:2026"),
    "ref_other": ("Tham chiếu khác", "Other references"),
    "status": ("Trạng thái", "Status"),
    "evidence": ("Bằng chứng", "Evidence"),
    "reason": ("Lý do", "Reason"),
    "time": ("Thời điểm", "Time"),
    "passed_targets": ("Đạt", "Passed"),
    "skipped_targets": ("Bỏ qua", "Skipped"),
    "evidence_of_passes": ("Bằng chứng của các kết quả đạt", "Evidence of passing results"),
    "pass_evidence_pdf_note": ("Bằng chứng chi tiết của các kết quả đạt có trong bản HTML và JSON của báo cáo này.",
                               "Detailed evidence of passing results is in the HTML and JSON versions of this report."),
    "no_results": ("Không có kết quả kiểm tra.", "No check results."),
    "uncatalogued": ("(không có trong danh mục)", "(not in the catalog)"),
    "status_pass": ("Đạt", "Pass"),
    "status_fail": ("Không đạt", "Fail"),
    "status_error": ("Lỗi", "Error"),
    "status_skipped": ("Bỏ qua", "Skipped"),
    "status_not_assessed": ("Chưa đánh giá được", "Not assessed"),
    "not_assessed_targets": ("Chưa đánh giá được", "Not assessed"),
    "sev_critical": ("Nghiêm trọng", "Critical"),
    "sev_high": ("Cao", "High"),
    "sev_medium": ("Trung bình", "Medium"),
    "sev_low": ("Thấp", "Low"),
    "sev_info": ("Thông tin", "Info"),
    "sev_unknown": ("Chưa phân loại", "Unclassified"),
    # SLA
    "sla": ("Chất lượng dịch vụ (SLA)", "Service levels (SLA)"),
    "sla_platforms": ("Theo nền tảng", "Per platform"),
    "sla_sites": ("Theo đơn vị (đường truyền tới trung tâm)", "Per unit (link to the center)"),
    "availability": ("Độ sẵn sàng", "Availability"),
    "availability_target": ("Mục tiêu sẵn sàng", "Availability target"),
    "latency": ("Độ trễ", "Latency"),
    "latency_ms": ("Độ trễ (ms)", "Latency (ms)"),
    "latency_ok": ("Yêu cầu dưới ngưỡng trễ", "Requests under the latency threshold"),
    "latency_threshold": ("Ngưỡng trễ", "Latency threshold"),
    "error_budget_left": ("Ngân sách lỗi còn lại", "Error budget left"),
    "budget_exhausted": ("đã hết", "exhausted"),
    "meets_sla": ("Đạt SLA", "Meets SLA"),
    "daily_availability": ("Độ sẵn sàng theo ngày", "Daily availability"),
    "daily_latency": ("Độ trễ theo ngày", "Daily latency"),
    "trend": ("Diễn biến", "Trend"),
    "no_daily_series": ("không có số liệu theo ngày", "no daily series"),
    "sla_missing": ("Kết quả kiểm tra chưa có số liệu SLA.", "The check results carry no SLA figures."),
    "sla_heatmap": ("Độ sẵn sàng theo ngày của mọi đơn vị", "Daily availability of every unit"),
    "heatmap_legend": ("Màu: xanh ≥ mục tiêu, vàng dưới mục tiêu, đỏ < 95 %, xám không có dữ liệu.",
                       "Colour: green ≥ target, amber below target, red < 95%, grey no data."),
    "window": ("Khoảng thời gian", "Window"),
    # changes
    "changes": ("Thay đổi so với kỳ trước", "Changes since the previous report"),
    "no_previous": ("Không có báo cáo kỳ trước để so sánh.", "No previous report to compare with."),
    "previous_from": ("So với kết quả lúc {when}.", "Compared with the results of {when}."),
    "new_failures": ("Không đạt mới", "New failures"),
    "fixed": ("Đã khắc phục", "Fixed"),
    "still_failing": ("Vẫn không đạt", "Still failing"),
    "new_results": ("Kết quả mới", "New results"),
    "gone_results": ("Kết quả không còn", "Results no longer present"),
    "before": ("Kỳ trước", "Before"),
    "now": ("Kỳ này", "Now"),
    "change": ("Thay đổi", "Change"),
    "sla_trend": ("Diễn biến SLA", "SLA trend"),
    "sites_worse": ("Đơn vị có độ sẵn sàng giảm", "Units whose availability fell"),
    "sites_better": ("Đơn vị có độ sẵn sàng tăng", "Units whose availability rose"),
    "mean_site_availability": ("Độ sẵn sàng trung bình của các đơn vị", "Mean availability of the units"),
    "nothing": ("Không có.", "None."),
    "more": ("và {n} mục khác", "and {n} more"),
    # footer
    "generated_by": ("Tạo bởi dcops {version}", "Generated by dcops {version}"),
}


def t(lang: str, key: str, **kw) -> str:
    try:
        vi, en = LABELS[key]
    except KeyError:
        raise KeyError(f"report label '{key}' has no translation; add it to infra/report/i18n.py") from None
    s = vi if lang == "vi" else en
    return s.format(**kw) if kw else s


def fmt_num(lang: str, x: float | int | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, int) and not isinstance(x, bool):
        s = f"{x:,}"
        return s.replace(",", ".") if lang == "vi" else s
    s = f"{x:,.{digits}f}"
    if lang == "vi":
        s = s.replace(",", " ").replace(".", ",").replace(" ", ".")
    return s


def fmt_pct(lang: str, x: float | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    n = fmt_num(lang, float(x), digits)
    return f"{n} %" if lang == "vi" else f"{n}%"


def fmt_date(lang: str, d: _dt.date | _dt.datetime | str | None, with_time: bool = False) -> str:
    if d is None or d == "":
        return "–"
    if isinstance(d, str):
        try:
            d = _dt.datetime.fromisoformat(d.replace("Z", "+00:00"))
        except ValueError:
            try:
                d = _dt.date.fromisoformat(d)
            except ValueError:
                return d
    if isinstance(d, _dt.datetime) and with_time:
        if d.tzinfo is not None:
            d = d.astimezone(_dt.timezone.utc)
        hm = d.strftime("%H:%M")
        return (f"{hm} UTC {d:%d/%m/%Y}" if lang == "vi" else f"{d:%Y-%m-%d} {hm} UTC")
    return f"{d:%d/%m/%Y}" if lang == "vi" else f"{d:%Y-%m-%d}"
