"""A deterministic generator of plain English sentences for the synthetic corpora.

``python -m maskgct.data.sentences OUT.txt`` writes :data:`LARGE_COUNT` distinct sentences; the shipped
``sentences_en_large.txt`` is that output (a test checks that the generator still reproduces it). Every
word list and sentence frame below was written for this project, so the list may be redistributed under
the licence of this repository. ``--count N --exclude data/*/text`` writes a longer list without the sentences
a corpus already reads (the default model's second corpus, ``egs/synth/tts1``'s ``extra_voices``).

The sentences are 4-20 words of ordinary English: statements, questions, requests and exclamations, with
commas and semicolons, and words chosen to cover English phones (including the rarer ʒ, θ, ð, ɔɪ, aʊ, ʊ
and the r-coloured vowels). There are no digits, abbreviations, symbols or apostrophes (the G2P of
:mod:`maskgct.text` spells out what follows an apostrophe: "don't" ends in "t iː"), so espeak-ng, that G2P
and whisper read them alike (American spelling throughout).

Only ``random.Random.random()`` is used (the one method whose sequence Python guarantees across versions
for a given seed), so every machine and Python version produces the same list.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

LARGE_COUNT = 8000
SEED = 20261202
MIN_WORDS, MAX_WORDS = 4, 20


def _items(text: str) -> list[str]:
    """A comma-separated list; a line break counts as a space (an item may wrap onto the next line)."""
    return [item.strip() for item in " ".join(text.split("\n")).split(",") if item.strip()]


def _split(text: str, sep: str = "/") -> list[tuple[str, ...]]:
    return [tuple(part.strip() for part in item.split(sep)) for item in _items(text)]


# People: "phrase/pronoun". Names are capitalised, roles start with a lower-case determiner.
NAMES = _split("""
Anna/she, Thomas/he, Margaret/she, Joseph/he, Charlotte/she, George/he, Lucy/she, Victor/he, Rachel/she,
Oliver/he, Sophie/she, Hugo/he, Judith/she, Peter/he, Eleanor/she, Arthur/he, Grace/she, Samuel/he,
Helen/she, Martin/he, Julia/she, Frank/he, Nora/she, Edward/he, Alice/she, Daniel/he, Rose/she,
Benjamin/he, Clara/she, Walter/he, Irene/she, Leonard/he, Vera/she, Simon/he, Agnes/she, Felix/he,
Ruth/she, Gilbert/he, Joyce/she, Howard/he, Beatrice/she, Raymond/he, Louise/she, Theodore/he, Ivy/she,
Jerome/he, Dorothy/she, Timothy/he, Miriam/she, Roger/he
""")
ROLES = _split("""
the old fisherman/he, my aunt/she, our neighbor/he, the young doctor/she, her grandmother/she, the
baker/he, my little brother/he, the new teacher/she, his cousin/he, the bride/she, a tired
nurse/she, the mailman/he, the night guard/he, my sister/she, the captain/he, the shy girl/she, the tall
stranger/he, our landlady/she, the police officer/she, the chemist/he, my uncle/he, the gardener/he, the
painter/she, an elderly woman/she, a young man/he, the waitress/she, the carpenter/he, the
librarian/she, my father/he, her mother/she, the shepherd/he, the lawyer/she, a quiet boy/he, the
journalist/she, the pilot/he, the museum guide/she, his daughter/she, their son/he, the engineer/he, the
singer/she
""")
PEOPLE = NAMES + ROLES
# Transitive verbs: base/third person/past/participle/object classes (space-separated).
VERBS = _split("""
carry/carries/carried/carried/thing, drop/drops/dropped/dropped/thing, find/finds/found/found/thing doc
animal, lose/loses/lost/lost/thing doc, hide/hides/hid/hidden/thing doc,
clean/cleans/cleaned/cleaned/thing big, wrap/wraps/wrapped/wrapped/thing,
borrow/borrows/borrowed/borrowed/thing, buy/buys/bought/bought/thing food big,
sell/sells/sold/sold/thing big, pack/packs/packed/packed/thing food, wash/washes/washed/washed/thing
animal, move/moves/moved/moved/thing big, polish/polishes/polished/polished/thing big,
return/returns/returned/returned/thing doc, fetch/fetches/fetched/fetched/thing food,
keep/keeps/kept/kept/thing doc, bring/brings/brought/brought/thing food doc, eat/eats/ate/eaten/food,
share/shares/shared/shared/food, taste/tastes/tasted/tasted/food, finish/finishes/finished/finished/food
doc, order/orders/ordered/ordered/food, serve/serves/served/served/food, save/saves/saved/saved/food,
write/writes/wrote/written/doc, sign/signs/signed/signed/doc, post/posts/posted/posted/doc,
copy/copies/copied/copied/doc, fold/folds/folded/folded/doc, send/sends/sent/sent/doc,
check/checks/checked/checked/doc big, feed/feeds/fed/fed/animal, chase/chases/chased/chased/animal,
follow/follows/followed/followed/animal person, photograph/photographs/photographed/photographed/animal
big place, catch/catches/caught/caught/animal, draw/draws/drew/drawn/animal big place,
watch/watches/watched/watched/animal person, brush/brushes/brushed/brushed/animal,
paint/paints/painted/painted/big, repair/repairs/repaired/repaired/big, fix/fixes/fixed/fixed/big,
measure/measures/measured/measured/big, lift/lifts/lifted/lifted/thing, meet/meets/met/met/person,
visit/visits/visited/visited/person place, help/helps/helped/helped/person,
call/calls/called/called/person, thank/thanks/thanked/thanked/person,
invite/invites/invited/invited/person, warn/warns/warned/warned/person,
greet/greets/greeted/greeted/person, recognize/recognizes/recognized/recognized/person,
leave/leaves/left/left/thing place, reach/reaches/reached/reached/place,
describe/describes/described/described/place person, explore/explores/explored/explored/place,
choose/chooses/chose/chosen/thing food, enjoy/enjoys/enjoyed/enjoyed/food
""")
# Objects by class.
THINGS = _items("""
a key, the blue cup, an umbrella, a basket of apples, the old map, a wooden spoon, a silver coin, the
heavy suitcase, a jar of honey, the leather wallet, a ball of string, the red scarf, a pair of gloves,
the brass lamp, a box of matches, the garden shears, a bag of flour, the copper kettle, a woolen hat,
the broken watch, a bottle of oil, the toy boat, a pocket knife, the beige jacket, a stack of plates,
the golden ring, a roll of tape, the yellow bucket, a glass vase, the fishing rod, a pencil case, the
leather boots, a paper bag, the treasure chest, a loaf of bread, the cheese knife, a pillow, the
thermos, a hammer, the bathroom mirror, a sewing kit, the camera, a tin of paint, the wicker chair, a
music box, the violin, a velvet cushion, the orange towel, a cardboard box, the television remote, an
old compass, the church keys
""")
FOOD = _items("""
the bread, a cheese sandwich, a bowl of soup, a ripe peach, the orange, a chicken pie, some rice, the
plum jam, a slice of melon, the vegetable stew, a cup of tea, the cherry cake, a boiled egg, the
mushroom soup, some fresh fish, a glass of milk, the apple tart, a bowl of cherries, the potato salad, a
mug of cocoa, the lemon pudding, some roasted nuts, a plate of noodles, the cucumber salad, a piece of
chocolate, the pumpkin soup, a pot of coffee, the bean stew, some grapes, a warm biscuit, the garlic
bread, a bowl of porridge, the cheese, some strawberries, a jug of juice, the pancakes
""")
DOCS = _items("""
a letter, the report, a short poem, a postcard, the shopping list, a recipe, the invitation, a note, the
contract, a birthday card, the receipt, a diary entry, the menu, a thank you note, the train tickets, a
long email, the newspaper article, a page of music, the weather report, a telegram, the school
timetable, a love letter, the passport, a travel guide, the instructions, a library book
""")
ANIMALS = _items("""
the gray cat, a stray dog, the old horse, our goat, a little mouse, the young owl, a tiny kitten, the
brown bear, a wild rabbit, the noisy parrot, a white goose, the lazy pig, a black sheep, the lost puppy,
a green frog, the hungry fox, a baby deer, the spotted cow, a clever crow, the old tortoise, a shy
squirrel, the giraffe, a hedgehog, the donkey, a swan, the sleepy lion, a honey bee
""")
BIG = _items("""
the fence, the old car, the kitchen table, the bicycle, the fishing boat, the garage door, the roof, the
piano, the wooden shed, the front gate, the tractor, the wardrobe, the bookshelf, the garden wall, the
rowing boat, the van, the staircase, the bathtub, the washing machine, the old clock tower, the bench,
the greenhouse, the chimney, the canoe, the boiler, the fountain
""")
PLACES = _items("""
the museum, the village, the lighthouse, the zoo, the old castle, the market, the harbor, the cathedral,
the farm, the gallery, the mountains, the island, the town hall, the palace, the valley, the factory,
the beach, the south coast, the national park, the cave, the university, the northern lakes, the desert,
the city
""")
ANIMATE = {"animal": ANIMALS, "person": [phrase for phrase, _ in ROLES]}
OBJECTS = {"thing": THINGS, "food": FOOD, "doc": DOCS, "big": BIG, "place": PLACES, **ANIMATE}
LOCATIONS = _items("""
in the kitchen, at the station, near the river, behind the barn, under the old bridge, by the
lighthouse, on the train, at the market, in the garden, beside the church, outside the bakery, across
the street, in the village square, at the harbor, in the attic, at the museum, in the library, on the
beach, in the forest, near the pharmacy, at the edge of the lake, inside the garage, on the balcony, at
the bus stop, behind the theater, in the hospital, at the airport, in the hallway, under the stairs, in
the basement, on the ferry, at the hotel, in the classroom, near the playground, on the hill, by the
fireplace, in the orchard, at the post office, in the laundry room, at the cinema, on the mountain path,
near the old mill, in the boathouse, at the zoo, in the cellar, beside the fountain, at the farmhouse,
in the pantry, on the roof
""")
TIMES = _items("""
yesterday, last night, this morning, on Sunday, every Tuesday, in the spring, after lunch, before dawn,
at midnight, during the storm, over the weekend, in the middle of the night, a week ago, early in the
morning, late in the afternoon, on a rainy Thursday, the day before yesterday, last summer, in January,
at noon, on Friday evening, in the autumn, during the holidays, after the concert, at sunset, on Monday,
in December, two days ago, at breakfast, after school, on Wednesday, last winter, in the evening, during
the parade, before supper, on Saturday morning
""")
WEEKDAYS = _items("""
Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday
""")
ADVERBS = _items("""
quickly, carefully, slowly, quietly, happily, nervously, gently, proudly, patiently, eagerly, secretly,
calmly, politely, clumsily, cheerfully, anxiously
""")
THING_ADJECTIVES = _items("""
old, new, clean, dusty, heavy, light, cheap, expensive, wet, dry, warm, cold, smooth, rough, bright,
dark, tiny, huge, broken, shiny, soft, hard, strange, beautiful, ugly, round, narrow, wide, plain,
precious, fragile, useful
""")
WEATHER = _items("""
cold, windy, foggy, freezing, very hot, stormy, pleasant, humid, cloudy, damp, chilly, lovely,
miserable, warm and sunny, gray and wet
""")
WEATHER_TOMORROW = _items("""
rains, snows, is sunny, stays dry, gets windy, is foggy, clears up, stays warm, is too hot, pours
""")
EVENTS = _items("""
the guests arrive, dinner, it gets dark, the shop closes, the train leaves, you go to bed, the meeting
starts, the rain begins, your mother comes home, the bell rings, the film starts, we leave for the
airport, the sun goes down, the children wake up, the weekend, the bus comes
""")
WAIT_UNTIL = _items("""
the morning, after lunch, the rain stops, Friday, the others get here, next week, the end of the month,
tomorrow, the weather changes, the shop opens
""")
ARRIVALS = _items("""
arrived home, woke up, came back, got to the station, opened the door, walked into the room, reached the
top of the hill, finished work, heard the news, sat down, got off the bus, looked outside, turned on the
light, returned from the south
""")
EXCUSES = _items("""
was too tired, had no time, could not find the right tools, was running late, forgot the address, felt
unwell, had to go to work, missed the bus, lost the key, changed his mind, changed her mind, fell
asleep, ran out of money, was needed at home
""")
COMMENTS = _items("""
it was a long day, nobody noticed, it took an hour, everyone was pleased, the house was very quiet, it
started to rain, the neighbors were watching, it was harder than expected, the children laughed, nothing
else happened, the evening was calm, the dog barked once
""")
RELATIVES = _items("""
lives next door, works at the bank, had just come back from the coast, rarely speaks, grew up on a farm,
plays the violin, owns the bakery, used to be a sailor, teaches history, is afraid of thunder, loves old
maps, knows everyone in town, had a bad cold, never forgets a face
""")
SOUNDS = _items("""
the church bells, children laughing, a dog barking, soft music, the waves, someone singing, a train
whistle, loud voices, an owl hooting, thunder, a baby crying, the wind in the trees, a piano, footsteps,
a car horn
""")
SOUND_SOURCES = _items("""
the kitchen, the next room, the street, the garden, the hills, the harbor, somewhere upstairs, the
school, far away, the forest, the square, the basement
""")
ANIMAL_ACTIONS = _items("""
swimming across a river, sleeping on a roof, chasing its own tail, climbing a tree, eating out
of a bowl, walking along a wall, hiding in a boot, dancing in the rain, playing with a ball, riding
on a bicycle, sitting on a chimney, stealing a sandwich
""")
PLURALS = _items("""
empty bottles, wooden chairs, paper boats, yellow tulips, broken umbrellas, brown envelopes, sleepy
kittens, old photographs, silver spoons, glass jars, red apples, muddy boots, woolen socks, unopened
letters, wild geese, bicycles, fishing nets, candles, clocks, books about birds, toy soldiers, cushions
""")
NUMBERS = _items("""
two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, fifteen, twenty, thirty, a
hundred, dozens of, several, a few, many, hundreds of
""")
SEASONS = _items("""
spring, summer, autumn, winter, morning, evening, moonlight, rain, snow
""")
PLACE_ADJECTIVES = _items("""
quiet, lovely, busy, strange, peaceful, lonely, bright, gloomy, calm
""")
OPINIONS = _items("""
easy, hard, strange, pleasant, dangerous, unusual, useful, pointless, tiring, not easy, rather
difficult, always fun
""")
PLACE_NOUNS = _items("""
museum, village, castle, market, harbor, garden, palace, valley, beach, city
""")
THING_NOUNS = _items("""
jacket, lamp, chair, kettle, scarf, basket, umbrella, clock, mirror, vase
""")


class _Picker:
    """Uniform choices from ``random.Random(seed).random()`` alone (stable across Python versions)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def __call__(self, items):
        return items[min(len(items) - 1, int(self.rng.random() * len(items)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


class _Frames:
    def __init__(self, pick: _Picker):
        self.pick = pick

    def person(self) -> tuple[str, str]:
        return self.pick(PEOPLE)

    def verb_object(self, classes: str | None = None) -> tuple[tuple, str]:
        """A verb and a fitting object; ``self.kind`` is left at the object's class."""
        verb = self.pick(VERBS)
        kinds = verb[4].split()
        if classes is not None:
            allowed = [kind for kind in kinds if kind in classes.split()]
            while not allowed:
                verb = self.pick(VERBS)
                allowed = [kind for kind in verb[4].split() if kind in classes.split()]
            kinds = allowed
        self.kind = self.pick(kinds)
        return verb, self.pick(OBJECTS[self.kind])

    def where(self) -> str:
        """Where the last object was: a location, or a time when the object is itself a place."""
        return self.pick(TIMES if self.kind == "place" else LOCATIONS)

    def sentence(self) -> str:
        frames = [getattr(self, name) for name in sorted(dir(self)) if name.startswith("f_")]
        return self.pick(frames)()

    # Each f_* method makes one sentence of its frame.
    def f_statement_place(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"{_cap(s)} {v[2]} {o} {self.where()}."

    def f_time_first(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"{_cap(self.pick(TIMES))}, {s} {v[2]} {o}."

    def f_statement_time(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"{_cap(s)} {v[2]} {o} {self.pick(TIMES)}."

    def f_did_question(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"Did {s} {v[0]} {o} {self.where()}?"

    def f_why_question(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"Why did {s} {v[0]} {o} {self.pick(TIMES)}?"

    def f_where_question(self):
        (s, _), (v, o) = self.person(), self.verb_object("thing doc food")
        return f"Where did {s} {v[0]} {o}?"

    def f_reported(self):
        (s, pro), (v, o) = self.person(), self.verb_object()
        return f"{_cap(s)} said that {pro} had {v[3]} {o} {self.where()}."

    def f_and_then(self):
        (s, pro), (v, o), (v2, o2) = self.person(), self.verb_object(), self.verb_object()
        return f"{_cap(s)} {v[2]} {o}, and then {pro} {v2[2]} {o2}."

    def f_but_excuse(self):
        (s, pro), (v, o) = self.person(), self.verb_object()
        other = {"he": "her", "she": "his"}[pro]
        excuse = self.pick([e for e in EXCUSES if other not in e.split()])
        return f"{_cap(s)} wanted to {v[0]} {o}, but {pro} {excuse}."

    def f_if_weather(self):
        v, o = self.verb_object()
        return f"If it {self.pick(WEATHER_TOMORROW)} tomorrow, we will {v[0]} {o} {self.where()}."

    def f_please_before(self):
        v, o = self.verb_object("thing food doc big animal")
        return f"Please {v[0]} {o} before {self.pick(EVENTS)}."

    def f_could_you(self):
        v, o = self.verb_object("thing food doc big animal")
        name = self.pick(NAMES)[0]
        if self.pick([True, False]):
            return f"{name}, could you {v[0]} {o} for me?"
        return f"Could you {v[0]} {o} for me, {name}?"

    def f_ever_seen(self):
        animal = self.pick(ANIMALS).split(" ", 1)[1]
        return f"Have you ever seen {_article(animal)} {animal} {self.pick(ANIMAL_ACTIONS)}?"

    def f_there_were(self):
        return f"There were {self.pick(NUMBERS)} {self.pick(PLURALS)} {self.pick(LOCATIONS)}."

    def f_how_looks(self):
        place = self.pick(PLACES)
        return f"How {self.pick(PLACE_ADJECTIVES)} {place} looks in the {self.pick(SEASONS)}!"

    def f_description(self):
        noun = self.pick(THING_NOUNS)
        first = self.pick(THING_ADJECTIVES)
        second = self.pick([a for a in THING_ADJECTIVES if a != first])
        return f"The {noun} {self.pick(LOCATIONS)} was {first} and {second}."

    def f_could_hear(self):
        return f"We could hear {self.pick(SOUNDS)} from {self.pick(SOUND_SOURCES)}."

    def f_habit(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"{_cap(s)} always {v[1]} {o} {self.where()}."

    def f_still_there(self):
        o = "the " + self.pick(THINGS).split(" ", 1)[1]
        return f"Is {o} still {self.pick(LOCATIONS)}, or did someone move it?"

    def f_nobody_knew(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"Nobody knew why {s} had {v[3]} {o} so {self.pick(ADVERBS)}."

    def f_without_word(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"{_cap(s)} {v[2]} {o} {self.pick(ADVERBS)}, without saying a word."

    def f_when_arrived(self):
        (s, pro), (v, o) = self.person(), self.verb_object()
        return f"When {s} {self.pick(ARRIVALS)}, {pro} {v[2]} {o}."

    def f_together(self):
        (s, _), (s2, _), (v, o) = self.person(), self.person(), self.verb_object()
        if s2 == s:
            s2 = "a friend"
        return f"{_cap(s)} and {s2} {v[2]} {o} together."

    def f_which_one(self):
        (s, _), noun = self.person(), self.pick(THING_NOUNS)
        verb = self.pick([v for v in VERBS if "thing" in v[4]])
        first = self.pick(THING_ADJECTIVES)
        second = self.pick([a for a in THING_ADJECTIVES if a != first])
        return f"Which {noun} did {s} {verb[0]}, the {first} one or the {second} one?"

    def f_what_a(self):
        noun = self.pick(THING_NOUNS + PLACE_NOUNS)
        adjective = self.pick(THING_ADJECTIVES + PLACE_ADJECTIVES)
        return f"What {_article(adjective)} {adjective} {noun} that was!"

    def f_dont(self):
        v, o = self.verb_object("thing food doc big animal")
        return f"Do not {v[0]} {o} {self.where()}, {self.pick(NAMES)[0]}."

    def f_weather_so(self):
        v, o = self.verb_object()
        return f"The weather was {self.pick(WEATHER)}, so we {v[2]} {o} {self.where()}."

    def f_told_to(self):
        (s, _), (s2, _), (v, o) = self.person(), self.person(), self.verb_object()
        if s2 == s:
            s2 = "the others"
        return f"{_cap(s)} told {s2} to {v[0]} {o}."

    def f_who(self):
        v, o = self.verb_object()
        return f"Who {v[2]} {o} {self.where()}?"

    def f_by_the_time(self):
        (s, _), (s2, _), (v, o) = self.person(), self.person(), self.verb_object()
        if s2 == s:
            s2 = "somebody else"
        return f"By the time {s} {self.pick(ARRIVALS)}, {s2} had already {v[3]} {o}."

    def f_semicolon(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"{_cap(s)} {v[2]} {o}; {self.pick(COMMENTS)}."

    def f_every_weekday(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"Every {self.pick(WEEKDAYS)}, {s} {v[2]} {o} {self.where()}."

    def f_know_where(self):
        (s, _), (v, o) = self.person(), self.verb_object("thing doc food animal")
        return f"Do you know where {s} {v[2]} {o}?"

    def f_it_is(self):
        v, o = self.verb_object()
        return f"It is {self.pick(OPINIONS)} to {v[0]} {o} {self.where()}."

    def f_relative(self):
        (s, _), (v, o) = self.pick(ROLES), self.verb_object()
        return f"{_cap(s)}, who {self.pick(RELATIVES)}, {v[2]} {o}."

    def f_although(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"Although it was {self.pick(WEATHER)}, {s} {v[2]} {o} {self.where()}."

    def f_wait_until(self):
        v, o = self.verb_object()
        return f"Should we {v[0]} {o} now, or wait until {self.pick(WAIT_UNTIL)}?"

    def f_looked_at(self):
        (s, pro), o = self.person(), self.pick(THINGS + ANIMALS + DOCS + BIG)
        head = {"he": "his", "she": "her"}[pro] + " head"
        ending = self.pick(["smiled", "sighed", "laughed", "frowned", f"shook {head}", "said nothing"])
        return f"{_cap(s)} looked at {o} and {ending}."

    def f_wonder(self):
        (s, _), (v, o) = self.person(), self.verb_object()
        return f"I wonder if {s} remembered to {v[0]} {o}."


def generate(count: int = LARGE_COUNT, seed: int = SEED) -> list[str]:
    """``count`` distinct sentences of 4-20 words, the same list on every machine for a given seed."""
    frames = _Frames(_Picker(seed))
    seen: set[str] = set()
    out: list[str] = []
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > 50 * count:
            raise RuntimeError(f"only {len(out)} distinct sentences after {tries} tries")
        sentence = frames.sentence()
        if sentence in seen or not MIN_WORDS <= len(sentence.split()) <= MAX_WORDS:
            continue
        if any(sentence.lower().count(role) > 1 for role, _ in ROLES):
            continue  # "the baker met the baker"
        seen.add(sentence)
        out.append(sentence)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m maskgct.data.sentences", description="write the generated sentence list, one per line"
    )
    parser.add_argument("out", help="the sentence list to write")
    parser.add_argument(
        "--count",
        type=int,
        default=LARGE_COUNT,
        help="sentences generated (a longer list begins with the shorter one)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="TEXT",
        help="Kaldi text files (utt-id sentence): leave out every sentence they hold, so that "
        "a second corpus reads only new ones",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, not {args.count}")
    used = set()
    for text in args.exclude:
        try:
            lines = Path(text).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            print(f"error: {text}: {err.strerror or err}", file=sys.stderr)
            return 2
        used.update(line.split(maxsplit=1)[1].strip() for line in lines if len(line.split(maxsplit=1)) == 2)
    sentences = [line for line in generate(args.count) if line not in used]
    Path(args.out).write_text("".join(f"{line}\n" for line in sentences), encoding="utf-8")
    print(f"{args.out}: {len(sentences)} sentences ({args.count - len(sentences)} excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
