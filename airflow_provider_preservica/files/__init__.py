"""Files from elsewhere, read and written safely: the shared leaves of the feature packages.

``fixity`` (streaming checksums), ``nofollow`` (stage a file without following links), ``archive_members``
and ``unpack`` (a zip from elsewhere: safe names, sane sizes, all or nothing), ``bounded_xml`` and
``fragments`` (XML with no DTD and a size cap), ``storage`` (no partial file under its final name, local or
object storage), ``report_csv`` (CSV reports no spreadsheet runs as formulas). They import nothing of the
provider but ``exceptions`` and each other.
"""
