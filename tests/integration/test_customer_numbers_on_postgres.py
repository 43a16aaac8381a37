"""Two approvals setting up customers at the same moment get different numbers (PostgreSQL).

bench/load.py found this: with several web workers, two credit approvals both read the
highest C- number, both took the next one, and the second failed the unique index (a 500).
"""

from __future__ import annotations

import threading
import time

from casemgr.engine.connectors import _next_customer_number
from casemgr.extensions import db
from casemgr.models import Customer
from tests.integration.servers import pg_app


def test_a_second_approval_waits_for_the_first_and_takes_the_next_number(pg_url):
    app = pg_app(pg_url)
    picked: dict[str, str] = {}
    failures: list[BaseException] = []
    first_holds_its_number = threading.Event()

    def set_up(name: str) -> None:
        try:
            with app.app_context():
                if name == "second":
                    first_holds_its_number.wait(30)
                number = _next_customer_number()
                db.session.add(Customer(number=number, name=name))
                db.session.flush()
                if name == "first":
                    first_holds_its_number.set()
                    time.sleep(1.0)  # the rest of the first approval's step, uncommitted
                db.session.commit()
                picked[name] = number
                db.session.remove()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=set_up, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert picked["first"] != picked["second"]
    with app.app_context():
        names = dict(db.session.execute(db.select(Customer.number, Customer.name)).all())
        db.engine.dispose()
    assert names[picked["first"]] == "first" and names[picked["second"]] == "second"
