from __future__ import annotations

from bakery.packer import MachineReadableLine, parse_line


def test_ui_line_unescapes_packer_commas() -> None:
    line = parse_line("1795681748,,ui,message,    web.null.x: hello%!(PACKER_COMMA) world\n")

    assert line == MachineReadableLine(
        timestamp=1795681748,
        target="",
        type="ui",
        data=("message", "    web.null.x: hello, world"),
    )
    assert line.ui_kind == "message"
    assert line.ui_text == "    web.null.x: hello, world"


def test_escaped_newlines_become_real_newlines() -> None:
    line = parse_line(
        "1795681752,,ui,error,Error: Invalid block\\n\\n  on bad.pkr.hcl line 1%!(PACKER_COMMA)"
        ' in source "null" "x":\\n'
    )

    assert line is not None
    assert line.ui_text == (
        'Error: Invalid block\n\n  on bad.pkr.hcl line 1, in source "null" "x":\n'
    )


def test_data_fields_are_split_on_unescaped_commas() -> None:
    line = parse_line("1795681748,web.null.x,artifact,0,string,Stored%!(PACKER_COMMA) ok")

    assert line is not None
    assert line.target == "web.null.x"
    assert line.type == "artifact"
    assert line.data == ("0", "string", "Stored, ok")
    assert line.ui_kind is None
    assert line.ui_text == ""


def test_build_error_line_keeps_target() -> None:
    line = parse_line(
        "1795681752,web.null.x,error,Script exited with non-zero exit status: 3.Allowed exit "
        "codes are: [0]"
    )

    assert line is not None
    assert (line.target, line.type) == ("web.null.x", "error")
    assert line.data == ("Script exited with non-zero exit status: 3.Allowed exit codes are: [0]",)


def test_lines_outside_the_format_are_not_parsed() -> None:
    assert parse_line("panic: runtime error: invalid memory address") is None
    assert parse_line("Error: Failed to initialize build 'x'") is None
    assert parse_line("12ab,,ui,say,hello") is None
    assert parse_line("1795681748,,") is None
    assert parse_line("") is None
