"""Shared by the benchmarks: print a markdown section, and append it to a results file."""


def publish(lines: list[str], path: str | None) -> None:
    text = "\n".join(lines)
    print(text)
    if path:
        with open(path, "a") as output:
            output.write(text + "\n")
