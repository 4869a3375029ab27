"""Text frontend: normalisation and G2P to the official MaskGCT phone vocabulary.

`text_to_ids("Hello world.")` gives the ids T2S was trained with; see `frontend` for the languages,
inline phone spans and error handling.
"""

from maskgct.text.frontend import (
    phones_to_ids,
    split_runs,
    text_to_ids,
    text_to_phones,
    texts_to_ids,
    texts_to_phones,
)
from maskgct.text.inventory import UnknownPhoneWarning, ids_to_symbols, phone_list

__all__ = [
    "UnknownPhoneWarning",
    "ids_to_symbols",
    "phone_list",
    "phones_to_ids",
    "split_runs",
    "text_to_ids",
    "text_to_phones",
    "texts_to_ids",
    "texts_to_phones",
]
