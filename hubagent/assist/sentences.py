"""Sentences Home Assistant's set lacks and the assistant answers: reading a list back
("what's on my shopping list", "购物清单上有什么"). In the intents package's format, added
to the matcher's templates with `slots.add_sentences` when the assistant is imported."""

from __future__ import annotations

from hubagent.understand.slots import add_sentences

_TODO = {"domain": "todo"}

SENTENCES = {
    "en": {
        "intents": {
            "HubListRead": {
                "data": [
                    {
                        "sentences": [
                            "(what's|what is|what do I have) on [my|the] shopping list",
                            "read [me] [my|the] shopping list",
                        ]
                    },
                    {
                        "sentences": [
                            "(what's|what is|what do I have) on [my|the] {name} [list]",
                            "read [me] [my|the] {name} [list]",
                        ],
                        "requires_context": _TODO,
                    },
                ]
            }
        }
    },
    "zh-CN": {
        "intents": {
            "HubListRead": {
                "data": [
                    {
                        "sentences": [
                            "购物清单[上|里](有什么|有哪些)[东西]",
                            "(读|念)[一下]购物清单",
                        ]
                    },
                    {
                        "sentences": ["{name}[上|里](有什么|有哪些)[东西]", "(读|念)[一下]{name}"],
                        "requires_context": _TODO,
                    },
                ]
            }
        }
    },
}


def register() -> None:
    for language, data in SENTENCES.items():
        add_sentences(language, data)
