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
    "datacenter": ("Trung tâm tích hợp dữ liệu", "Data integration center"),
    "report_date": ("Ngày lập báo cáo", "Report date"),
    "results_date": ("Thời điểm kiểm tra", "Checks run at"),
    "scope": ("Phạm vi", "Scope"),
    "scope_text": ("{clusters} cụm máy chủ Kubernetes, {platforms} nền tảng dùng chung, {sites} đơn vị trên mạng truyền số liệu chuyên dùng, {controls} biện pháp kiểm soát",
                   "{clusters} clusters, {platforms} shared platforms, {sites} units on the WAN, {controls} controls"),
    "security_level": ("Cấp độ an toàn hệ thống thông tin", "Information-system security level"),
    "audit_standard": ("Tiêu chuẩn đánh giá", "Audited against"),
    "sla_window": ("Khoảng thời gian SLA", "SLA window"),
    "days": ("ngày", "days"),
    "dcops_version": ("Phiên bản dcops", "dcops version"),
    "province_file": ("Tệp mô tả tỉnh", "Province file"),
    "province_commit": ("Phiên bản của tệp mô tả tỉnh trong kho mã nguồn (mã ⟦commit⟧ git)", "Commit of the province file"),
    "not_in_git": ("không nằm trong kho mã nguồn (git)", "not in a git repository"),
    "uncommitted": ("có thay đổi chưa được lưu vào kho mã nguồn", "has uncommitted changes"),
    "results_file": ("Tệp kết quả kiểm tra", "Check results file"),
    "previous_file": ("Báo cáo kỳ trước", "Previous report"),
    "none": ("không có", "none"),
    "language": ("Ngôn ngữ", "Language"),
    "environment": ("Môi trường", "Environment"),
    "env_production": ("hệ thống thật (production) – {name}", "production – {name}"),
    "env_staging": ("môi trường thử nghiệm trước triển khai (staging) – {name}", "staging – {name}"),
    "env_lab": ("môi trường phòng thí nghiệm (lab) – {name}: không phải hệ thống thật", "lab – {name}: not a real system"),
    "env_sample": ("DỮ LIỆU MẪU: kết quả giả lập, không phải kết quả kiểm tra thật", "SAMPLE: synthetic results, not real measurements"),
    "env_unknown": ("không rõ môi trường (tệp kết quả không ghi)", "unknown (the results do not say)"),
    "provenance": ("Nguồn gốc của báo cáo", "Where this report comes from"),
    "provenance_note": ("Mã băm SHA-256 của các tệp đầu vào; lệnh `dcops report --verify report.json` tính lại và so sánh.",
                        "SHA-256 of the input files; `dcops report --verify report.json` recomputes and compares them."),
    "sha_results": ("kết quả", "results"),
    "sha_province": ("tệp tỉnh", "province file"),
    "sha_waivers": ("miễn trừ", "waivers"),
    "sha256_results": ("SHA-256 của tệp kết quả kiểm tra", "SHA-256 of the results file"),
    "sha256_province": ("SHA-256 của tệp mô tả tỉnh", "SHA-256 of the province file"),
    "sha256_waivers": ("SHA-256 của tệp miễn trừ", "SHA-256 of the waivers file"),
    "waivers_file": ("Tệp miễn trừ", "Waivers file"),
    "no_results_file": ("không có tệp kết quả (dữ liệu mẫu)", "no results file (sample data)"),
    "timezone_note": ("Mọi thời điểm trong báo cáo là giờ Việt Nam (Asia/Ho_Chi_Minh, UTC+7).",
                      "Every time in this report is Vietnam time (Asia/Ho_Chi_Minh, UTC+7)."),
    "secrets_note": ("Các giá trị bí mật (khóa riêng, mật khẩu, cụm mật khẩu) đã được che trong báo cáo này.",
                     "Secret values (private keys, passwords, passphrases) are redacted in this report."),
    # summary
    "summary": ("Tóm tắt", "Summary"),
    "pass_rate_by_severity": ("Tỷ lệ đạt theo mức độ nghiêm trọng", "Pass rate by severity"),
    "severity": ("Mức độ", "Severity"),
    "results": ("Kết quả", "Results"),
    "pass_rate": ("Tỷ lệ đạt", "Pass rate"),
    "pass_rate_note": ("Tỷ lệ đạt = đạt / (đạt + không đạt + lỗi); kết quả được miễn trừ, chưa đủ dữ liệu, chưa đánh giá được hoặc bỏ qua không tính.",
                       "Pass rate = pass / (pass + fail + error); waived, insufficient-data, not-assessed and skipped results are not counted."),
    "rates": ("Tỷ lệ đạt theo ba cách tính", "Pass rates, three ways"),
    "rate_kind": ("Cách tính", "Rate"),
    "definition": ("Định nghĩa", "Definition"),
    "rate_requirements": ("Theo yêu cầu của cấp độ", "By requirement of the level"),
    "rate_requirements_def": ("Số yêu cầu đạt / số yêu cầu đánh giá tự động đã có kết luận (đạt hoặc không đạt). Yêu cầu đánh giá thủ công, không áp dụng, được miễn trừ, chưa đủ dữ liệu hoặc chưa đánh giá được không tính.",
                              "Requirements passed / automatically assessed requirements with a verdict (passed or failed). Requirements assessed by hand, not applicable, waived, with insufficient data or not assessed are not counted."),
    "rate_controls": ("Theo biện pháp kiểm soát", "By control"),
    "rate_controls_def": ("Một biện pháp đạt khi mọi kết quả của nó trên mọi đối tượng đều đạt (không có kết quả không đạt hay lỗi). Tỷ lệ = số biện pháp đạt / số biện pháp có ít nhất một kết quả đạt, không đạt hoặc lỗi.",
                          "A control passes when none of its results on any target fails or errs. Rate = controls passing / controls with at least one pass, fail or error."),
    "rate_pairs": ("Theo cặp biện pháp × đối tượng", "By control × target pair"),
    "rate_pairs_def": ("Mỗi kết quả của một biện pháp trên một đối tượng (máy, cụm, nền tảng) được tính một lần: đạt / (đạt + không đạt + lỗi). Các biện pháp áp dụng cho nhiều máy (SSH, tham số nhân) chiếm phần lớn số cặp.",
                       "Each result of a control on a target (host, cluster, platform) counts once: pass / (pass + fail + error). Controls that apply to every host (SSH, kernel settings) make up most pairs."),
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
    "sla_insufficient": ("Chưa đủ dữ liệu", "Insufficient data"),
    "coverage": ("Tỷ lệ thời gian được giám sát", "Monitored share of the window"),
    "coverage_note": ("Khi thời gian được giám sát thấp hơn ngưỡng của tỉnh, kết quả SLA là “chưa đủ dữ liệu”: số liệu chỉ phản ánh thời gian đã giám sát, chưa phải kết luận cho cả kỳ.",
                      "When the monitored share of the window is below the province's threshold, the SLA is 'insufficient data': the figures cover the monitored time only, not the window."),
    "connected_note": ("Đơn vị được coi là kết nối khi các kiểm tra đường truyền (WireGuard, thăm dò) đạt, hoặc khi không có kiểm tra đó, khi máy của đơn vị trả lời các kiểm tra.",
                       "A unit counts as connected when its link checks (WireGuard, probes) pass or, where it has none, when its host answered the checks."),
    # requirement matrix
    "matrix": ("Ma trận yêu cầu của cấp độ", "Requirement matrix of the level"),
    "matrix_intro": ("Mọi yêu cầu của cấp độ {level} trong danh mục yêu cầu, với trạng thái và các biện pháp kiểm soát làm căn cứ.",
                     "Every requirement of level {level} in the requirements catalog, with its status and the controls behind it."),
    "requirement": ("Yêu cầu", "Requirement"),
    "clause": ("Mục", "Clause"),
    "assessed_how": ("Cách đánh giá", "Assessed"),
    "assessed_automated": ("Tự động", "Automated"),
    "assessed_manual": ("Thủ công", "By hand"),
    "assessed_not_applicable": ("Không áp dụng", "Not applicable"),
    "req_failed": ("Không đạt", "Failed"),
    "req_passed": ("Đạt", "Passed"),
    "req_waived": ("Được miễn trừ", "Waived"),
    "req_insufficient_data": ("Chưa đủ dữ liệu", "Insufficient data"),
    "req_not_assessed": ("Chưa đánh giá được", "Not assessed"),
    "req_manual": ("Đánh giá thủ công", "Assessed by hand"),
    "req_not_applicable": ("Không áp dụng", "Not applicable"),
    "controls_behind": ("Biện pháp kiểm soát và kết quả", "Controls and results"),
    "no_result": ("chưa có kết quả", "no result"),
    "matrix_missing": ("Chưa có danh mục yêu cầu ({why}).", "No requirements catalog ({why})."),
    "matrix_rule": ("Trạng thái của yêu cầu đánh giá tự động: không đạt khi một biện pháp có kết quả không đạt hoặc lỗi; nếu không, chưa đánh giá được khi một biện pháp chưa có kết quả; nếu không, chưa đủ dữ liệu, được miễn trừ, rồi mới đạt.",
                    "Status of an automated requirement: failed when one of its controls has a failed or erroneous result; otherwise not assessed when one has no result; otherwise insufficient data, waived, and only then passed."),
    "controls_outside": ("Biện pháp kiểm soát chưa gắn với yêu cầu nào: {ids}", "Controls not linked to any requirement: {ids}"),
    # waivers
    "waivers": ("Các trường hợp miễn trừ", "Waivers"),
    "waivers_none": ("Không áp dụng tệp miễn trừ nào.", "No waivers file was applied."),
    "waivers_intro": ("Miễn trừ là ngoại lệ đã được phê duyệt, có thời hạn, cho một biện pháp trên các đối tượng nêu tên. Kết quả được miễn trừ không tính là không đạt. Miễn trừ hết hạn trước ngày kiểm tra ({day}) không còn hiệu lực.",
                      "A waiver is an approved, dated exception to a control on named targets. A waived result does not count as a failure. A waiver that expired before the day of the checks ({day}) no longer applies."),
    "justification": ("Lý do", "Justification"),
    "approver": ("Người phê duyệt", "Approver"),
    "approved_on": ("Ngày phê duyệt", "Approved on"),
    "expires": ("Hết hạn", "Expires"),
    "waiver_ref": ("Văn bản", "Reference"),
    "targets": ("Đối tượng", "Targets"),
    "all_targets": ("mọi đối tượng", "every target"),
    "waiver_state": ("Hiệu lực", "State"),
    "waiver_in_force": ("Còn hiệu lực", "In force"),
    "waiver_expired": ("Miễn trừ đã hết hạn", "Waiver expired"),
    "waiver_expired_on": ("miễn trừ đã hết hạn ngày {date}", "waiver expired on {date}"),
    "waiver_until": ("hiệu lực đến {date}", "valid until {date}"),
    "waiver_counts": ("Đã miễn trừ {applied} kết quả; {expired} kết quả không đạt vì miễn trừ hết hạn; {passing} kết quả vẫn đạt",
                      "{applied} results waived; {expired} failing with the waiver expired; {passing} passing anyway"),
    "was_status": ("Trạng thái gốc", "Original status"),
    "junit_waived": ("được miễn trừ", "waived"),
    "untranslated_reason": ("(chưa có bản dịch; nguyên văn của công cụ kiểm tra:)", "(untranslated)"),
    "rationale_untranslated": ("chưa có bản tiếng Việt", "no English text"),
    # sign-off
    "signoff": ("Xác nhận của các bên", "Sign-off"),
    "signoff_intro": ("Báo cáo được lập từ các tệp nêu ở trang bìa; các bên ký xác nhận dưới đây.",
                      "This report was made from the files named on the cover; the parties sign below."),
    "prepared_by": ("Người lập báo cáo", "Prepared by"),
    "checked_by": ("Người kiểm tra", "Checked by"),
    "approved_by": ("Người phê duyệt", "Approved by"),
    "sign_hint": ("(Ký, ghi rõ họ tên)", "(Signature and full name)"),
    "place_date": ("{place}, ngày {d} tháng {m} năm {y}", "{place}, {y}-{m}-{d}"),
    "place_date_blank": ("{place}, ngày …… tháng …… năm ……", "{place}, date: ……………"),
    "operator": ("Đơn vị vận hành", "Operator"),
    "level_decisions": ("Quyết định phê duyệt cấp độ an toàn hệ thống thông tin", "Security-level decisions"),
    "decision_system": ("Hệ thống thông tin", "Information system"),
    "decision_number": ("Số quyết định", "Decision number"),
    "decision_date": ("Ngày ban hành", "Date"),
    "decision_issuer": ("Cơ quan ban hành", "Issued by"),
    "no_level_decisions": ("Tệp mô tả tỉnh chưa ghi quyết định phê duyệt cấp độ nào (mục `dossier.level_decisions`).",
                           "The province file names no security-level decision (`dossier.level_decisions`)."),
    # inventory
    "inventory": ("Danh mục hạ tầng", "Inventory"),
    "clusters": ("Cụm Kubernetes", "Kubernetes clusters"),
    "node_pools": ("Nhóm máy chủ (⟦node pool⟧)", "Node pools"),
    "segments": ("Phân đoạn mạng (VLAN)", "Network segments"),
    "storage": ("Lưu trữ", "Storage"),
    "storage_classes": ("Lớp lưu trữ", "Storage classes"),
    "backup": ("Sao lưu", "Backup"),
    "platforms": ("Nền tảng dùng chung", "Shared platforms"),
    "sites": ("Đơn vị trên mạng WAN", "Units on the WAN"),
    "national_endpoints": ("Kết nối hệ thống quốc gia", "National systems"),
    "national_direct": ("Kết nối trực tiếp", "Linked directly"),
    "national_via_lgsp": ("Sử dụng qua LGSP", "Used through LGSP"),
    "exception_platform": ("Nền tảng", "Platform"),
    "national_endpoint": ("Hệ thống quốc gia", "National system"),
    "national_exceptions": ("Ngoại lệ: kết nối trực tiếp tới hệ thống quốc gia không qua LGSP",
                            "Exceptions: direct links to national systems that bypass LGSP"),
    "no_national_exceptions": ("Không có ngoại lệ: mọi kết nối tới hệ thống quốc gia đều đi qua LGSP.",
                               "No exception: every link to the national systems goes through LGSP."),
    "stack_outputs": ("Thông số đầu ra của cấu hình triển khai (⟦Pulumi stack⟧)", "Pulumi stack outputs"),
    "stack_resources": ("Tài nguyên trong trạng thái triển khai (⟦Pulumi state⟧)", "Resources in the Pulumi state"),
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
    "segment": ("Phân đoạn mạng", "Segment"),
    "taints": ("Ràng buộc bố trí (⟦taint⟧)", "Taints"),
    "zone": ("Vùng mạng", "Zone"),
    "cidr": ("Dải địa chỉ", "Address range"),
    "vlan": ("VLAN", "VLAN"),
    "backend": ("Công nghệ", "Backend"),
    "replication": ("Số bản sao", "Replicas"),
    "reclaim_policy": ("Xử lý dữ liệu khi xóa yêu cầu lưu trữ", "Reclaim policy"),
    "default": ("Mặc định", "Default"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "schedule": ("Lịch", "Schedule"),
    "retention_days": ("Thời gian lưu (ngày)", "Retention (days)"),
    "backup_target": ("Nơi lưu bản sao", "Backup target"),
    "separate_infra": ("Hạ tầng tách biệt", "Separate infrastructure"),
    "restore_test": ("Chu kỳ thử khôi phục", "Restore test interval"),
    "encrypted": ("Mã hóa", "Encrypted"),
    "log_retention": ("Thời gian lưu nhật ký (ngày)", "Log retention (days)"),
    "kind": ("Loại", "Kind"),
    "replicas": ("Số bản sao (⟦replica⟧)", "Replicas"),
    "address": ("Địa chỉ", "Address"),
    "slo": ("Mục tiêu SLO", "SLO"),
    "level": ("Cấp độ", "Level"),
    "volumes": ("Ổ dữ liệu", "Volumes"),
    "image": ("Ảnh container (⟦image⟧)", "Image"),
    "depends_on": ("Phụ thuộc", "Depends on"),
    "tier": ("Loại đơn vị", "Unit type"),
    "parent": ("Đơn vị cấp trên", "Parent"),
    "lan": ("Mạng LAN", "LAN"),
    "tunnel_address": ("Địa chỉ đường hầm", "Tunnel address"),
    "reach": ("Truy cập nền tảng", "Reaches"),
    "ports": ("Cổng", "Ports"),
    "sites_by_tier": ("Số đơn vị theo loại", "Units by type"),
    "hubs": ("Cổng trung tâm của mạng WAN", "WAN gateways (hubs)"),
    "hub_role_primary": ("Chính", "Primary"),
    "hub_role_standby": ("Dự phòng", "Standby"),
    "target_name": ("Tên đối tượng kiểm tra", "Target name"),
    "wan_address": ("Địa chỉ WAN", "WAN address"),
    "time_server": ("Máy chủ thời gian", "Time server"),
    "log_server": ("Máy chủ nhật ký", "Log server"),
    "time_upstream": ("Nguồn thời gian chuẩn", "Upstream time sources"),
    # controls
    "controls": ("Kết quả từng biện pháp kiểm soát", "Results of every control"),
    "controls_intro": ("Các biện pháp có kết quả không đạt hoặc lỗi được trình bày trước.",
                       "Controls with failures or errors come first."),
    "control": ("Biện pháp kiểm soát", "Control"),
    "rationale": ("Cơ sở yêu cầu", "Rationale"),
    "references": ("Tham chiếu", "References"),
    "ref_tcvn11930": ("TCVN 11930:2017", "TCVN 11930:2017"),
    "ref_tcvn14423": ("TCVN 14423:2025", "TCVN 14423:2025"),
    "std_11930": ("TCVN 11930:2017, Công nghệ thông tin – Các kỹ thuật an toàn – Yêu cầu cơ bản về an toàn hệ thống thông tin theo cấp độ",
                  "TCVN 11930:2017, Information technology – Security techniques – Basic requirements for securing information systems by security level"),
    "std_14423": ("TCVN 14423:2025, An ninh mạng – Yêu cầu đối với hệ thống thông tin quan trọng",
                  "TCVN 14423:2025, An ninh mạng – Yêu cầu đối với hệ thống thông tin quan trọng (Cybersecurity – Requirements for important information systems)"),
    "cis_title_note": ("tên khuyến nghị theo nguyên bản tiếng Anh của CIS", "recommendation titles as CIS writes them"),
    "ref_legal": ("Văn bản quy phạm pháp luật", "Legal basis"),
    "ref_other": ("Tham chiếu khác", "Other references"),
    "status": ("Trạng thái", "Status"),
    "evidence": ("Bằng chứng", "Evidence"),
    "reason": ("Lý do", "Reason"),
    "time": ("Thời điểm", "Time"),
    "passed_targets": ("Đạt", "Passed"),
    "all_targets_of_control": ("tất cả {n} đối tượng được kiểm tra", "all {n} targets checked"),
    "every_other_target": ("mọi đối tượng còn lại được kiểm tra ({n}; bản HTML và JSON nêu tên từng đối tượng)",
                           "every other target checked ({n}; the HTML and JSON versions name each one)"),
    "skipped_targets": ("Bỏ qua", "Skipped"),
    "evidence_of_passes": ("Bằng chứng của các kết quả đạt", "Evidence of passing results"),
    "pass_evidence_pdf_note": ("Bằng chứng chi tiết của các kết quả đạt có trong bản HTML và JSON của báo cáo này.",
                               "Detailed evidence of passing results is in the HTML and JSON versions of this report."),
    "pdf_scope_note": ("Bản PDF này liệt kê, cho từng biện pháp kiểm soát, mọi kết quả không đạt hoặc lỗi kèm lý do và bằng "
                       "chứng, các kết quả chưa đạt khác (được miễn trừ, chưa đủ dữ liệu, chưa đánh giá được, bỏ qua) kèm lý do, "
                       "và các đối tượng đạt dưới dạng danh sách tên gọn, không kèm bằng chứng. Khi một danh sách gồm mọi đối tượng "
                       "được kiểm tra, hoặc mọi đối tượng còn lại sau các danh sách trên, PDF chỉ ghi số lượng. Bản HTML và JSON "
                       "của báo cáo này có mọi kết quả kèm bằng chứng.",
                       "This PDF lists, for every control, each failed or erroneous result with its reason and evidence, the "
                       "other results that did not pass (waived, insufficient data, not assessed, skipped) with their reason, "
                       "and the passing targets as a compact list of names, without evidence. Where a list holds every target "
                       "checked, or every target the lists above leave, the PDF gives its count only. The HTML and JSON "
                       "versions of this report hold every result with its evidence."),
    "no_results": ("Không có kết quả kiểm tra.", "No check results."),
    "uncatalogued": ("(không có trong danh mục)", "(not in the catalog)"),
    "status_pass": ("Đạt", "Pass"),
    "status_fail": ("Không đạt", "Fail"),
    "status_error": ("Lỗi", "Error"),
    "status_skipped": ("Bỏ qua", "Skipped"),
    "status_not_assessed": ("Chưa đánh giá được", "Not assessed"),
    "status_waived": ("Được miễn trừ", "Waived"),
    "status_insufficient_data": ("Chưa đủ dữ liệu", "Insufficient data"),
    "waived_targets": ("Được miễn trừ", "Waived"),
    "insufficient_targets": ("Chưa đủ dữ liệu", "Insufficient data"),
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
    "latency_ok": ("Tỷ lệ yêu cầu có độ trễ dưới ngưỡng", "Share of requests under the latency threshold"),
    "latency_threshold": ("Ngưỡng trễ", "Latency threshold"),
    "error_budget_left": ("Ngân sách lỗi còn lại", "Error budget left"),
    "error_budget_note": ("Ngân sách lỗi (⟦error budget⟧): thời gian gián đoạn còn được phép trong khoảng thời gian đánh giá, bằng (100 % − mục tiêu) × khoảng thời gian; ví dụ mục tiêu 99,9 % trong 30 ngày cho phép 43,2 phút gián đoạn. Giá trị âm: đã vượt mức cho phép.",
                          "Error budget: the downtime still allowed in the window, (100% − target) × window; for example a 99.9% target over 30 days allows 43.2 minutes. Negative: overspent."),
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


VN = _dt.timezone(_dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")
"""Vietnam's time: UTC+7 all year (no daylight saving)."""


def fmt_date(lang: str, d: _dt.date | _dt.datetime | str | None, with_time: bool = False) -> str:
    """A date, or a time of day and date, in Vietnam's time with the zone named.

    vi: ``09:00 ngày 31/03/2026 (giờ Việt Nam, UTC+7)``; en: ``2026-03-31 09:00 (Asia/Ho_Chi_Minh, UTC+7)``.
    A timestamp without a zone is read as UTC; a bare date is shown as it is."""
    if d is None or d == "":
        return "–"
    if isinstance(d, str):
        try:
            d = _dt.datetime.fromisoformat(d.replace("Z", "+00:00")) if "T" in d or " " in d.strip() else _dt.date.fromisoformat(d)
        except ValueError:
            try:
                d = _dt.date.fromisoformat(d[:10])
            except ValueError:
                return d
    if isinstance(d, _dt.datetime):
        if d.tzinfo is None:
            d = d.replace(tzinfo=_dt.timezone.utc)
        d = d.astimezone(VN)
        if with_time:
            hm = d.strftime("%H:%M")
            return f"{hm} ngày {d:%d/%m/%Y} (giờ Việt Nam, UTC+7)" if lang == "vi" else f"{d:%Y-%m-%d} {hm} (Asia/Ho_Chi_Minh, UTC+7)"
    return f"{d:%d/%m/%Y}" if lang == "vi" else f"{d:%Y-%m-%d}"


def vn_parts(d: _dt.datetime | str) -> tuple[int, int, int]:
    """(day, month, year) of a timestamp in Vietnam's time."""
    if isinstance(d, str):
        d = _dt.datetime.fromisoformat(d.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    d = d.astimezone(VN)
    return d.day, d.month, d.year
