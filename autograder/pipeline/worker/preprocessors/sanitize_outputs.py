"""``SanitizeOutputs``: nothing a student's code outputs stays active in a browser.

The autograded notebook is shown to the instructor by nbgrader's formgrader
and, as feedback HTML, to the student; both render its outputs and markdown
as HTML.  This preprocessor runs in the worker after execution and
verification, on every cell (student and graded alike), so that what is
stored and what is rendered carry no script:

* outputs keep only the MIME types of :data:`SAFE_MIME` as they are, and
  those of :data:`SANITIZED_MIME` after sanitizing (``text/html`` and
  ``text/markdown`` with :func:`clean_html`, ``image/svg+xml`` with
  :func:`clean_svg`); JavaScript, widget views and state, and every other
  type are dropped (an output left empty says so in ``text/plain``);
* output metadata keeps only the width and height of images (``isolated``
  would put the HTML in a ``data:`` iframe);
* markdown cells (and raw cells, which nbconvert copies verbatim) whose
  HTML could carry anything the allow-list removes are replaced by their
  sanitized rendering, written so that markdown cannot re-read it;
* ``metadata.widgets`` (widget state, which nbconvert's templates turn into
  a widget-manager script) is removed from the notebook and from every cell,
  and markdown attachments keep only PNG and JPEG images.

HTML is sanitized by ammonia (``nh3``) against one allow-list (tables, basic
formatting, links and images; no ``<script>``, ``<style>``, ``<iframe>``,
``<object>``, ``<embed>``, ``<form>``, event-handler attributes, or URLs other
than http(s), mailto and relative ones, except ``data:image/png`` and
``data:image/jpeg`` in ``<img src>``).  :func:`clean_html` is also the
``clean_html`` filter of the feedback exporter (:mod:`autograder.pipeline.worker.feedback`).
"""

from __future__ import annotations

import functools
from html.parser import HTMLParser

import nh3
from nbconvert.preprocessors import Preprocessor

RENDERED_CACHE = 4096
"""Most markdown sources and highlighted code a worker process remembers rendered.

A class's notebooks repeat the instructor's markdown cells, so each is
rendered (here and in :class:`autograder.pipeline.worker.feedback.FeedbackExporter`)
once per assignment and worker rather than once per submission.
"""

SAFE_MIME = ("text/plain", "image/png", "image/jpeg")
"""Output MIME types kept as they are (rendered escaped, or as base64 images)."""
SANITIZED_MIME = ("text/html", "image/svg+xml", "text/markdown")
"""Output MIME types kept after sanitizing."""
WIDGET_METADATA_KEY = "widgets"
"""Notebook and cell metadata key that carries widget state."""
IMAGE_DATA_URLS = ("data:image/png;", "data:image/jpeg;")
"""The only ``data:`` URLs kept, and only in ``<img src>``."""
URL_SCHEMES = frozenset({"http", "https", "mailto", "data"})
"""URL schemes ammonia lets through (``data`` then narrowed by :data:`IMAGE_DATA_URLS`)."""
ID_PREFIX = "user-content-"
"""Prefix of every kept ``id`` (a student's ids cannot clobber the page's own)."""
DROPPED_NOTE = "[output removed by the grader: {types}]"

_TEXT_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
    "del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s",
    "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
})
_TEXT_ATTRIBUTES = {
    "*": {"class", "id", "title", "align", "style"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"border"},
    "td": {"colspan", "rowspan", "valign"},
    "th": {"colspan", "rowspan", "valign"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start"},
}
# CSS properties kept in a style attribute (pandas' table styles); ammonia drops the rest
_STYLE_PROPERTIES = frozenset({
    "text-align", "vertical-align", "font-weight", "font-style", "color", "background-color",
    "border", "border-collapse", "padding", "margin", "width", "height", "white-space",
})
_SVG_TAGS = frozenset({
    "svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text",
    "tspan", "title", "desc", "defs", "clipPath", "use", "linearGradient", "radialGradient",
    "stop", "symbol", "marker", "pattern", "mask",
})
_SVG_ATTRIBUTES = {
    "*": {
        "id", "class", "transform", "fill", "fill-opacity", "fill-rule", "stroke",
        "stroke-width", "stroke-opacity", "stroke-linecap", "stroke-linejoin",
        "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity", "clip-path",
        "clip-rule", "font-family", "font-size", "font-weight", "font-style", "text-anchor",
        "dominant-baseline", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry",
        "width", "height", "d", "points", "dx", "dy", "offset", "stop-color", "stop-opacity",
        "viewBox", "preserveAspectRatio", "gradientUnits", "gradientTransform",
        "patternUnits", "markerWidth", "markerHeight", "refX", "refY", "orient", "style",
        "xmlns", "version", "href", "xlink:href", "xmlns:xlink",
    },
}


_URL_ATTRIBUTES = ("href", "src", "xlink:href")


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    """ammonia's per-attribute hook: ``data:`` URLs only as PNG/JPEG images."""
    if attribute in _URL_ATTRIBUTES and value.strip().lower().startswith("data:"):
        if element == "img" and attribute == "src" and value.strip().lower().startswith(
                IMAGE_DATA_URLS):
            return value
        return None
    return value


def _encodable(value) -> str:
    """``value`` as text ammonia takes: a lone surrogate becomes its escape ``\\udcXX``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def clean_html(html, kept_urls: list | None = None) -> str:
    """``html`` (an output, or rendered markdown) with only the allow-listed markup left.

    ``kept_urls``, when given, receives the URL attributes that survived.
    """
    text = _encodable(html)

    def hook(element, attribute, value):
        value = _filter_attribute(element, attribute, value)
        if value is not None and kept_urls is not None and attribute in _URL_ATTRIBUTES:
            kept_urls.append(value)
        return value

    return nh3.clean(text, tags=set(_TEXT_TAGS), attributes=_TEXT_ATTRIBUTES,
                     attribute_filter=hook, url_schemes=set(URL_SCHEMES),
                     filter_style_properties=set(_STYLE_PROPERTIES), id_prefix=ID_PREFIX,
                     strip_comments=True)


class _UrlCounter(HTMLParser):
    """Counts the URL attributes (``href``, ``src``) of an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls = 0

    def handle_starttag(self, tag, attrs):
        self.urls += sum(1 for name, _ in attrs if name in _URL_ATTRIBUTES)


def clean_svg(svg) -> str:
    """An SVG image with shapes, text and styles only: no script, handler or foreign URL."""
    text = _encodable(svg)
    return nh3.clean(text, tags=set(_SVG_TAGS), attributes=_SVG_ATTRIBUTES,
                     attribute_filter=_filter_attribute, url_schemes=set(URL_SCHEMES),
                     filter_style_properties=set(_STYLE_PROPERTIES), id_prefix=ID_PREFIX,
                     strip_comments=True)


def _render_markdown(source: str) -> str:
    from nbconvert.filters.markdown import markdown2html

    return markdown2html(source)


def _as_inert_markdown(html: str) -> str:
    """Sanitized HTML as markdown source that markdown renders as it is.

    One line starting with ``<div>`` is a single raw HTML block: no text in it
    is read as markdown again (a line break becomes a character reference).
    """
    flat = html.replace("\r", "&#13;").replace("\n", "&#10;")
    return f'<div class="sanitized-markdown">{flat}</div>'


def safe_markdown(source: str) -> str:
    """``source``, or its sanitized rendering when it has raw HTML or a URL the sanitizer drops.

    A pure function of ``source``: results are remembered (:data:`RENDERED_CACHE`).

    Markdown without raw HTML makes active content only through the URLs of
    its links and images: when :func:`clean_html` keeps them all, ``source``
    is kept as written.  Otherwise its rendering (nbconvert's own
    ``markdown2html``) is sanitized by :func:`clean_html` and returned as
    inert markdown (:func:`_as_inert_markdown`).
    """
    return _safe_markdown(str(source))


@functools.lru_cache(maxsize=RENDERED_CACHE)
def _safe_markdown(text: str) -> str:
    if not text.strip():
        return text
    probe = _encodable(text)
    html = _render_markdown(probe)
    kept: list[str] = []
    cleaned = clean_html(html, kept)
    if not nh3.is_html(probe):
        # no raw HTML: only the URLs of links and images could be active
        counter = _UrlCounter()
        counter.feed(html)
        counter.close()
        if counter.urls == len(kept):
            return text
    return _as_inert_markdown(cleaned)


def _as_text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class SanitizeOutputs(Preprocessor):
    """Make every output and markdown cell of a graded notebook inert (see the module)."""

    def preprocess(self, nb, resources):
        nb.metadata.pop(WIDGET_METADATA_KEY, None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        cell.metadata.pop(WIDGET_METADATA_KEY, None)
        if cell.cell_type == "markdown":
            cell.source = safe_markdown(cell.source)
            self._clean_attachments(cell)
        elif cell.cell_type == "raw":
            cell.source = clean_html(cell.source)
        elif cell.cell_type == "code":
            cell.outputs = [out for out in (self._clean_output(o) for o in cell.get("outputs", []))
                            if out is not None]
        return cell, resources

    @staticmethod
    def _clean_attachments(cell) -> None:
        attachments = cell.get("attachments")
        if not attachments:
            return
        for name in list(attachments):
            bundle = attachments[name]
            kept = {m: v for m, v in bundle.items() if m in ("image/png", "image/jpeg")}
            if kept:
                attachments[name] = kept
            else:
                del attachments[name]

    @staticmethod
    def _clean_output(out):
        kind = out.get("output_type")
        if kind in ("stream", "error"):
            return out  # rendered as escaped text
        if kind not in ("display_data", "execute_result"):
            return None
        data = out.get("data", {})
        kept, dropped = {}, []
        for mime, value in data.items():
            if mime in SAFE_MIME:
                kept[mime] = value
            elif mime == "text/html":
                kept[mime] = clean_html(_as_text(value))
            elif mime == "text/markdown":
                kept[mime] = safe_markdown(_as_text(value))
            elif mime == "image/svg+xml":
                kept[mime] = clean_svg(_as_text(value))
            else:
                dropped.append(mime)
        if not kept:
            kept["text/plain"] = DROPPED_NOTE.format(types=", ".join(sorted(dropped)))
        out["data"] = kept
        meta = out.get("metadata", {})
        out["metadata"] = {
            mime: {k: v for k, v in meta[mime].items()
                   if k in ("width", "height") and isinstance(v, int | float)}
            for mime in ("image/png", "image/jpeg")
            if mime in kept and isinstance(meta.get(mime), dict)
        }
        return out
