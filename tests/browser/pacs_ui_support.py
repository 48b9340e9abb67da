"""Driving the PACS's web page in Chromium: pages that record console errors, dropping
real files on the upload zone, waiting for the uploads' summary."""

from __future__ import annotations

USER, PASSWORD = "teacher", "secret"


def open_page(browser, width=1280, height=800):
    """A page signed in to the PACS, its console errors and exceptions in ``page.problems``;
    close its ``.context``."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        http_credentials={"username": USER, "password": PASSWORD},
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.problems = []  # console errors and uncaught exceptions
    page.on("pageerror", lambda error: page.problems.append(f"exception: {error}"))
    page.on(
        "console",
        lambda message: (
            message.type == "error" and page.problems.append(f"console: {message.text}")
        ),
    )
    return page


DROP = """([zone, feeder]) => {
    const transfer = new DataTransfer();
    for (const file of feeder.files) transfer.items.add(file);
    zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true,
                                                  cancelable: true}));
    zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true,
                                              cancelable: true}));
}"""


def drop_files(page, paths):
    """Drop real files on the page's drop zone, as a file manager would."""
    page.evaluate("""() => {
        const feeder = document.createElement('input');
        feeder.type = 'file'; feeder.multiple = true; feeder.id = 'test-feeder';
        feeder.hidden = true; document.body.append(feeder);
    }""")
    page.locator("#test-feeder").set_input_files([str(p) for p in paths])
    page.evaluate(
        DROP,
        [page.locator(".dropzone").element_handle(), page.locator("#test-feeder").element_handle()],
    )
    page.evaluate("() => document.getElementById('test-feeder').remove()")


def wait_until_uploaded(page, rows):
    """Wait until the upload page lists ``rows`` files and is done; return its summary."""
    page.wait_for_function(
        "(rows) => document.querySelector('.summary').dataset.state === 'done'"
        " && document.querySelectorAll('.uploads tbody tr').length === rows",
        arg=rows,
        timeout=120_000,
    )
    summary = page.locator(".summary")
    return {
        key: int(summary.get_attribute(f"data-{key}")) for key in ("stored", "present", "refused")
    }
