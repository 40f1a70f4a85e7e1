"""The credit OpenStreetMap's licence requires wherever gyrophare shows a route or a map."""

#: Map data credit (ODbL 1.0 section 4.3): in every route, map and report.
ATTRIBUTION = "© OpenStreetMap contributors, ODbL 1.0"
#: The same credit for HTML pages, with the links the licence asks for.
ATTRIBUTION_HTML = ('© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                    'contributors, <a href="https://opendatacommons.org/licenses/odbl/">'
                    'ODbL 1.0</a>')
