"""Import templates: an .xlsx workbook with one sheet per register table and the vocabularies as drop-downs.

``zhizao register template -o 登记模板.xlsx`` and the dashboard's download give the same file. Each sheet is
named after its table (the loader picks the sheet of the table it loads), its header row reads
``项目编号* (project_id)``: the Chinese label, a star for a required column, the canonical name; coded columns
offer their vocabulary's Chinese labels in a drop-down (the loader also accepts codes and English labels);
dates are ``YYYY-MM-DD``; the investment of a project is in 10,000 CNY (总投资（万元）). A sheet "说明 README"
explains the columns and a sheet "vocabularies" lists every code with its labels.
"""

from __future__ import annotations

from pathlib import Path

from zhizao.portfolio.register import HEADERS, SCALED
from zhizao.portfolio.vocabularies import vocabulary
from zhizao.schema import REGISTER_TABLES, TABLES

VOCAB_SHEET = "vocabularies"
README_SHEET = "说明 README"
ROWS = 5000  #: rows of a sheet that get the drop-downs

README = [
    ("zhizao 登记导入模板 / register import template", ""),
    ("", ""),
    ("每个工作表对应一张登记表，表名即工作表名。", "One sheet per register table, named after the table."),
    ("表头：中文名称* (字段名)；带 * 的列必填。", "Header: Chinese label* (column name); * marks a required column."),
    ("带下拉列表的列取受控词表的值；也可填写代码或英文名称。",
     "Columns with a drop-down take a controlled vocabulary: its Chinese label, code or English label."),
    ("日期格式 YYYY-MM-DD（也接受 YYYY/MM/DD、YYYY年M月D日）。",
     "Dates as YYYY-MM-DD (also YYYY/MM/DD, YYYY年M月D日)."),
    ("项目总投资单位为万元；申报的提升或降低比例填小数（0.2）或百分数（20%）。",
     "A project's investment is in 10,000 CNY; declared changes as fractions (0.2) or percentages (20%)."),
    ("导入：zhizao ingest projects 模板.xlsx（--update 按编号更新已登记的记录）。",
     "Load: zhizao ingest projects template.xlsx (--update updates registered records by key)."),
    ("顺序：programmes、enterprises、scopes、projects、designations、programme_targets。",
     "Order: programmes, enterprises, scopes, projects, designations, programme_targets."),
]


def header(table: str, column: str) -> str:
    """The template's header of a column: ``label* (name)``."""
    if column in SCALED.get(table, {}):
        label = SCALED[table][column][0]
        required = False
    else:
        label = HEADERS[table].get(column, column)
        required = TABLES[table].column(column).required and not (table == "designations"
                                                                    and column == "designation_id")
    return f"{label}{'*' if required else ''} ({column})"


def template_columns(table: str) -> list[str]:
    """The columns of a table's sheet (the investment of projects in 10,000 CNY)."""
    cols = []
    for c in TABLES[table].names:
        if table == "projects" and c == "investment":
            cols.append("investment_10k")
        else:
            cols.append(c)
    return cols


def write_template(path: str | Path, tables=REGISTER_TABLES, records: dict | None = None) -> Path:
    """Write the import template.

    Parameters
    ----------
    path : str or Path
        The .xlsx file to write.
    tables : iterable of str
        Register tables to include (default all, in load order).
    records : dict, optional
        table -> list of row dicts to pre-fill (an export of the register to edit and load again).

    Returns
    -------
    Path
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    order = ["programmes", "enterprises", "scopes", "projects", "designations", "programme_targets"]
    tables = [t for t in order if t in set(tables)]
    path = Path(path)
    wb = Workbook()
    readme = wb.active
    readme.title = README_SHEET
    for zh, en in README:
        readme.append([zh, en])
    readme.column_dimensions["A"].width = 60
    readme.column_dimensions["B"].width = 80
    readme["A1"].font = Font(bold=True)

    vs = wb.create_sheet(VOCAB_SHEET)
    ranges: dict[str, str] = {}
    col = 1
    used = sorted({c.vocabulary for t in tables for c in TABLES[t].columns if c.vocabulary})
    for name in used:
        voc = vocabulary(name)
        _letter_code, letter_zh, _letter_en = (get_column_letter(col + i) for i in range(3))
        vs.cell(1, col, f"{name} code")
        vs.cell(1, col + 1, f"{voc.title.get('zh', name)} (zh)")
        vs.cell(1, col + 2, f"{voc.title.get('en', name)} (en)")
        for i, e in enumerate(voc.entries, start=2):
            vs.cell(i, col, e.code)
            vs.cell(i, col + 1, e.zh)
            vs.cell(i, col + 2, e.en or "")
        ranges[name] = f"{VOCAB_SHEET}!${letter_zh}$2:${letter_zh}${len(voc.entries) + 1}"
        for i in range(3):
            vs.column_dimensions[get_column_letter(col + i)].width = 22
        col += 4

    fill = PatternFill("solid", fgColor="DDEBF7")
    for t in tables:
        ws = wb.create_sheet(t)
        cols = template_columns(t)
        for j, c in enumerate(cols, start=1):
            cell = ws.cell(1, j, header(t, c))
            cell.font = Font(bold=True)
            cell.fill = fill
            ws.column_dimensions[get_column_letter(j)].width = max(14, min(40, len(cell.value) + 4))
            spec = TABLES[t].column(c) if c in TABLES[t].names else None
            if spec is not None and spec.vocabulary:
                dv = DataValidation(type="list", formula1=ranges[spec.vocabulary], allow_blank=True,
                                    showErrorMessage=False)
                dv.prompt = vocabulary(spec.vocabulary).title.get("zh", spec.vocabulary)
                ws.add_data_validation(dv)
                dv.add(f"{get_column_letter(j)}2:{get_column_letter(j)}{ROWS}")
        ws.freeze_panes = "A2"
        for rec in (records or {}).get(t, []):
            row = []
            for c in cols:
                if c == "investment_10k":
                    v = rec.get("investment")
                    row.append(None if v is None else v / 1e4)
                else:
                    v = rec.get(c)
                    spec = TABLES[t].column(c)
                    if spec.vocabulary and isinstance(v, str):
                        v = vocabulary(spec.vocabulary).label(v, "zh")
                    row.append(v.isoformat() if hasattr(v, "isoformat") else v)
            ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


__all__ = ["header", "template_columns", "write_template"]
