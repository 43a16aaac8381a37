"""Valid credit-application data, as a sales rep and a specialist would enter it."""

INTAKE = {
    "legal_name": "Acme Widgets LLC",
    "tax_id": "12-3456789",
    "address": "1 Main St, Springfield, IL 62701",
    "contact_email": "ap@acme.example",
    "years_in_business": 5,
    "requested_limit": "25000.00",
    "requested_terms_days": 30,
    "trade_ref_1": "Globex, J. Smith, 555-0101",
    "trade_ref_2": "Initech, P. Gibbons, 555-0102",
    "trade_ref_3": "Umbrella, A. Wesker, 555-0103",
    "bank_reference": "First Bank, M. Jones, 555-0199",
    "sales_rep": "rep",
}


def review(limit: str = "20000.00", score: int = 720, flags=(), action: str = "recommend") -> dict:
    data = {
        "bureau_source": "dnb",
        "bureau_score": score,
        "bureau_report_date": "2026-11-01",
        "trade_refs_verified": 3,
        "fraud_flags": list(flags),
        "review_action": action,
        "recommended_limit": limit,
        "recommended_terms_days": 30,
    }
    if action == "request_info":
        data["info_request"] = "Last two years of audited financials"
        data.pop("recommended_limit")
    return data
