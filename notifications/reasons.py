"""The reasons an applicant reads, in the applicant's language.

A reason gongmo gives (a failed eligibility rule, a selection outcome) is a
code and its values, rendered here from a message catalogue, ko and en. The
audit keeps the office's English line; the notice gets the catalogue's.
Reasons an admin writes (a disqualification by hand, an objection decision)
are free text and stay as written.

A typed dict catalogue rather than gettext/Babel: a few dozen short
sentences in two languages, read by the renderer only, with named values
(amounts in won, counts); a .po/.mo toolchain would add a compile step and a
runtime lookup for no gain here. `check()` runs at import: every code has
both languages with the same placeholders, so a missing translation fails at
start, not in a letter. Babel remains the way if the web pages get
translated (they could then share these strings).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gongmo.notifications.render import format_krw
from gongmo.states.eligibility import RULES, Facts, Rules, answer_rule, required_local
from gongmo.states.eligibility import check as check_rules
from gongmo.states.questions import AnswerRuleSpec

LANGUAGES = ("ko", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    # failed eligibility checks (states/eligibility.py RULES)
    "eligibility.kind": {
        "ko": "신청 자격: {kind}은(는) 이 유형의 신청 대상({allowed})이 아닙니다",
        "en": "eligibility: {kind} is not among those who may apply ({allowed})",
    },
    "eligibility.population": {
        "ko": "인구 요건: 인구 {population}명으로, {limit}명 미만이어야 합니다",
        "en": "population: {population}, which must be below {limit}",
    },
    "eligibility.national_cap": {
        "ko": "국비 한도: 신청 국비 {national}원이 {years}년간 한도 {cap}원을 넘습니다",
        "en": "national share: {national} won exceeds the cap of {cap} won over {years} year(s)",
    },
    "eligibility.national_missing": {
        "ko": "국비: 신청 국비가 없습니다 (0원 또는 미기재); 국비 신청액을 적어야 합니다",
        "en": "national share: none was requested (0 won or missing); a plan asks for a national amount",
    },
    "eligibility.local_missing": {
        "ko": "지방비 매칭: 지방비가 없습니다 (0원 또는 미기재); 국비 대비 {ratio} 매칭이 필요합니다",
        "en": "local match: no local share (0 won or missing); local:national = {ratio} is required",
    },
    "eligibility.national_min": {
        "ko": "국비 하한: 신청 국비 {national}원이 최소 {minimum}원에 미치지 못합니다",
        "en": "national share: {national} won is below the minimum of {minimum} won",
    },
    "eligibility.years": {
        "ko": "사업 기간: {years}년으로, 1~{max_years}년이어야 합니다",
        "en": "program length: {years} year(s), which must be 1 to {max_years}",
    },
    "eligibility.local_match": {
        "ko": "지방비 매칭: 지방비 {local}원으로, 국비 대비 {ratio} 매칭에 필요한 {needed}원 이상이어야 합니다",
        "en": "local match: {local} won, at least {needed} won needed (local:national = {ratio})",
    },
    "eligibility.type": {
        "ko": "사업 유형: {chosen}은(는) 이 유형에서 고를 수 있는 사업 유형({allowed})이 아닙니다",
        "en": "project type: {chosen} is not one of {allowed}",
    },
    # failed rules on a question's answer (states/eligibility.py answer rules, config [[eligibility.answers]])
    "eligibility.answer_missing": {
        "ko": "신청 요건 「{question}」: 답변이 없습니다",
        "en": "condition '{question}': no answer was given",
    },
    "eligibility.answer_equals": {
        "ko": "신청 요건 「{question}」: 답변 ‘{answer}’은(는) 요건(‘{expected}’)에 맞지 않습니다",
        "en": "condition '{question}': the answer '{answer}' does not meet it (required: '{expected}')",
    },
    "eligibility.answer_members": {
        "ko": "신청 요건 「{question}」: 구성원 중 {missing}에 해당하는 기관이 없습니다 (필요한 구성: {required})",
        "en": "condition '{question}': no member is a {missing} (required: {required})",
    },
    # selection outcomes (states/selection.py decide)
    "selection.selected": {
        "ko": "평가 점수 {score}점, {of}개 기관 중 {rank}위로 선정 범위({slots}곳) 안에 들었습니다",
        "en": "score {score}, rank {rank} of {of}, within the {slots} slot(s)",
    },
    "selection.below_minimum": {
        "ko": "평가 점수 {score}점({of}개 기관 중 {rank}위)이 선정 최저 점수 {minimum}점에 미치지 못합니다",
        "en": "score {score} (rank {rank} of {of}) is below the qualifying minimum of {minimum}",
    },
    "selection.budget_skip": {
        "ko": "평가 점수 {score}점({of}개 기관 중 {rank}위)이나,"
        " 신청 국비 {national}원이 남은 예산 {left}원을 넘습니다",
        "en": "score {score} (rank {rank} of {of}), but its national share of {national} won exceeds the {left} won"
        " left of the budget",
    },
    "selection.slots_full": {
        "ko": "평가 점수 {score}점({of}개 기관 중 {rank}위)으로, 선정 규모 {slots}곳이 모두 찼습니다",
        "en": "score {score} (rank {rank} of {of}); all {slots} slot(s) were filled",
    },
    "selection.waitlist_full": {
        "ko": "예비 선정(대기) {waitlist}곳도 모두 찼습니다",
        "en": "the waitlist of {waitlist} is full",
    },
    "selection.waitlist_position": {
        "ko": "예비 선정 대기 {position}순위입니다",
        "en": "waitlist position {position}",
    },
    # the explanation of a result notice (workflow/stages/selection.py explain): the applicant's own
    # figures from the ranking rows, never an evaluator's identity or a single sheet
    "explain.part_mean": {
        "ko": "{part} 점수 {score}점: 평가위원 {sheets}명 점수의 평균",
        "en": "{part} score {score}: the mean of {sheets} sheets",
    },
    "explain.part_trimmed": {
        "ko": "{part} 점수 {score}점: 평가위원 {sheets}명 점수 중 최고점과 최저점을 뺀"
        " {counted}명 점수의 평균(절사평균)",
        "en": "{part} score {score}: the trimmed mean of {sheets} sheets, the highest and the lowest dropped"
        " ({counted} counted)",
    },
    "explain.weighted": {
        "ko": "평가 점수: 서면평가 {written}점 × {written_weight} + 발표평가 {presentation}점 × {presentation_weight}"
        " = {score}점",
        "en": "committee score: written {written} x {written_weight} + presentation {presentation}"
        " x {presentation_weight} = {score}",
    },
    "explain.rank": {
        "ko": "순위: 선정 최저 점수 {minimum}점 이상인 {qualified}개 기관 중 {rank}위 (최저 점수 미만 {below}개 기관)",
        "en": "rank {rank} of {qualified} qualified applications (at or above the minimum of {minimum};"
        " {below} below it)",
    },
    "explain.rank_unqualified": {
        "ko": "순위: 선정 최저 점수 {minimum}점 미만 (최저 점수 이상 {qualified}개 기관, 미만 {below}개 기관)",
        "en": "not ranked among the qualified: below the minimum of {minimum} ({qualified} qualified,"
        " {below} below it)",
    },
    "explain.cutoff": {
        "ko": "선정 기준선: {cutoff}점 (선정 때 마지막으로 선정된 기관의 평가 점수)",
        "en": "cutoff: {cutoff}, the committee score of the last application selected at the selection",
    },
    "explain.no_cutoff": {
        "ko": "선정 기준선: 없음 (선정된 기관이 없습니다)",
        "en": "cutoff: none (no application was selected)",
    },
    "explain.tie": {
        "ko": "동점: 다른 {others}개 기관과 {score}점으로 동점이었으며, 순위는 {tiebreak} 기준으로 정해졌습니다"
        " ({mine} 대 {theirs})",
        "en": "tied at {score} with {others} other application(s); decided by {tiebreak} ({mine} to {theirs})",
    },
    "explain.tie_same_second": {
        "ko": "동점: 다른 {others}개 기관과 {score}점으로 동점이었고 접수 시각({mine})도 같아, 순위는 접수번호"
        " 순서로 정해졌습니다",
        "en": "tied at {score} with {others} other application(s), received in the same second ({mine});"
        " decided by the order of the receipt numbers",
    },
    "explain.tie_undecided": {
        "ko": "동점: 다른 {others}개 기관과 {score}점으로 동점이었고 모든 동점 처리 기준이 같아, 순위는 신청번호"
        " 순서로 정해졌습니다",
        "en": "tied at {score} with {others} other application(s) on every tie-break; decided by the order of"
        " the application numbers",
    },
    "explain.rule_selected": {
        "ko": "선정: {qualified}개 기관 중 {rank}위로, 선정 규모 {slots}곳과 예산 범위 안에 들었습니다",
        "en": "selected: rank {rank} of {qualified}, within {slots} slots and the budget",
    },
    "explain.rule_below_minimum": {
        "ko": "미선정: 평가 점수 {score}점이 선정 최저 점수 {minimum}점에 미치지 못합니다",
        "en": "not selected: {score} is below the qualifying minimum {minimum}",
    },
    "explain.rule_budget_skip": {
        "ko": "미선정: {rank}위였으나 신청 국비 {national}이 남은 예산 {left}을 넘어 건너뛰었고,"
        " 예비 선정 {waitlist}곳도 모두 찼습니다",
        "en": "not selected: rank {rank} was skipped because its {national} would exceed the {left} of budget left,"
        " and the waitlist of {waitlist} was full",
    },
    "explain.rule_slots_full": {
        "ko": "미선정: {qualified}개 기관 중 {rank}위로, 선정 규모 {slots}곳과 예비 선정 {waitlist}곳이 모두 찼습니다",
        "en": "not selected: rank {rank} of {qualified}; the {slots} slots and the waitlist of {waitlist} were filled",
    },
    "explain.rule_waitlisted_budget": {
        "ko": "예비 선정 {position}순위: {rank}위였으나 신청 국비 {national}이 남은 예산 {left}을 넘어"
        " 건너뛰었습니다. {until} 전에 선정된 기관이 포기하거나 선정이 취소되면, 그때 남은 예산 안에서"
        " 순위대로 추가 선정됩니다",
        "en": "waitlisted, position {position}: rank {rank} was skipped because its {national} would exceed"
        " the {left} of budget left; promoted if a selected applicant withdraws or is cancelled before {until}"
        " and the budget then left allows",
    },
    "explain.rule_waitlisted": {
        "ko": "예비 선정 {position}순위: {qualified}개 기관 중 {rank}위로 선정 규모 {slots}곳이 모두 찼습니다."
        " {until} 전에 선정된 기관이 포기하거나 선정이 취소되면, 그때 남은 예산 안에서 순위대로 추가"
        " 선정됩니다",
        "en": "waitlisted, position {position}: rank {rank} of {qualified}, after the {slots} slots were filled;"
        " promoted if a selected applicant withdraws or is cancelled before {until}, within the budget then left",
    },
    "explain.rule_promoted_withdrawn": {
        "ko": "추가 선정: 예비 선정 {position}순위였으며, 선정된 기관이 포기하여 생긴 자리에 선정되었습니다."
        " 이 선정 뒤 남은 예산: {left}",
        "en": "promoted from waitlist position {position}: a selected applicant withdrew and freed its place;"
        " {left} of the budget is left after this selection",
    },
    "explain.rule_promoted_cancelled": {
        "ko": "추가 선정: 예비 선정 {position}순위였으며, 선정된 기관의 선정이 취소되어 생긴 자리에"
        " 선정되었습니다. 이 선정 뒤 남은 예산: {left}",
        "en": "promoted from waitlist position {position}: a selected application's selection was cancelled,"
        " which freed its place; {left} of the budget is left after this selection",
    },
}

# How a tie-break is named in a notice ("criterion:KEY" takes the criterion's own names).
TIE_BREAKS: dict[str, dict[str, str]] = {
    "written": {"ko": "서면평가 점수", "en": "the written score"},
    "presentation": {"ko": "발표평가 점수", "en": "the presentation score"},
    "receipt": {"ko": "접수 시각", "en": "the earlier receipt"},
    "criterion": {"ko": "「{name}」 항목 점수", "en": "the '{name}' criterion score"},
}

# Values shown by name: the kinds of local government and the project types.
NAMES: dict[str, dict[str, str]] = {
    "ko": {
        "special_city": "특별시",
        "metropolitan_city": "광역시",
        "special_self_governing_city": "특별자치시",
        "special_self_governing_province": "특별자치도",
        "city": "시",
        "county": "군",
        "district": "자치구",
        "climate_crisis": "기후위기 대응형",
        "local_extinction": "지역소멸 대응형",
        "": "(선택 안 함)",
        "True": "예",
        "False": "아니오",
        "local_government": "지방자치단체",
        "private_company": "민간기업",
        "university": "대학",
        "written": "서면평가",
        "presentation": "발표평가",
    },
    "en": {
        "special_city": "special city",
        "metropolitan_city": "metropolitan city",
        "special_self_governing_city": "special self-governing city",
        "special_self_governing_province": "special self-governing province",
        "city": "city",
        "county": "county",
        "district": "autonomous district",
        "climate_crisis": "climate-crisis response",
        "local_extinction": "local-extinction response",
        "": "(none chosen)",
        "True": "yes",
        "False": "no",
        "local_government": "local government",
        "private_company": "private company",
        "university": "university",
        "written": "written",
        "presentation": "presentation",
    },
}
SEPARATOR = {"ko": "; ", "en": "; "}


@dataclass(frozen=True)
class Reason:
    """One reason: a catalogue code and its values (ints are shown with
    thousands separators, names as the catalogue names them)."""

    code: str
    values: Mapping[str, Any] = field(default_factory=dict)
    named: tuple[str, ...] = ()  # values that are names (a kind, a type, or a list of them)
    money: tuple[str, ...] = ()  # values that are amounts in won, shown as a notice shows money

    def text(self, language: str) -> str:
        lang = language if language in LANGUAGES else "ko"
        shown = {
            k: format_krw(int(v), lang) if k in self.money else _show(v, lang, k in self.named)
            for k, v in self.values.items()
        }
        return CATALOGUE[self.code][lang].format(**shown)

    def plain(self) -> dict[str, Any]:
        """The reason as JSON-ready data (an event's detail keeps it; `from_plain` reads it back)."""
        values = {k: str(v) if isinstance(v, Decimal) else v for k, v in self.values.items()}
        return {"code": self.code, "values": values, "named": list(self.named), "money": list(self.money)}

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Reason:
        if data.get("code") not in CATALOGUE:
            raise ValueError(f"reason code {data.get('code')!r} is not in the catalogue")
        return cls(
            str(data["code"]),
            dict(data.get("values") or {}),
            tuple(data.get("named") or ()),
            tuple(data.get("money") or ()),
        )


def eligibility(rules: Rules, facts: Facts) -> list[Reason]:
    """One reason per failed rule of an application's checklist, with its values."""
    failed = {c.rule for c in check_rules(rules, facts) if not c.passed}
    ratio = rules.local_match_ratio
    values: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
        "kind": ({"kind": facts.kind, "allowed": sorted(rules.kinds)}, ("kind", "allowed")),
        "population": ({"population": facts.population, "limit": rules.population_below or 0}, ()),
        "national_cap": ({"national": facts.national_krw, "cap": rules.national_cap_krw, "years": rules.years}, ()),
        "national_min": ({"national": facts.national_krw, "minimum": rules.national_min_krw}, ()),
        "years": ({"years": facts.years, "max_years": rules.years}, ()),
        "local_match": (
            {
                "local": facts.local_krw,
                "needed": required_local(facts.national_krw or 0, ratio),
                "ratio": f"{ratio.numerator}:{ratio.denominator}",
            },
            (),
        ),
        "type": ({"chosen": facts.project_type or "", "allowed": list(rules.types)}, ("chosen", "allowed")),
    }
    out = []
    for rule in RULES:
        if rule not in failed:
            continue
        if rule == "national_cap" and not facts.national_krw:  # no amount at all: not "over the cap"
            out.append(Reason("eligibility.national_missing"))
        elif rule == "local_match" and not facts.local_krw:
            out.append(Reason("eligibility.local_missing", {"ratio": values[rule][0]["ratio"]}))
        else:
            out.append(Reason(f"eligibility.{rule}", *values[rule]))
    for answer in rules.answer_rules:
        if answer_rule(answer.question) in failed:
            out.append(_answer_reason(rules, facts, answer))
    return out


def _answer_reason(rules: Rules, facts: Facts, rule: AnswerRuleSpec) -> Reason:
    """A failed rule on an answer: none given, a value that is not the one required, or members missing a kind."""
    question = rules.question_of(rule.question)
    text = {"ko": question.text_ko, "en": question.text_en} if question is not None else rule.question
    given = facts.answers.get(rule.question)
    if given is None:
        return Reason("eligibility.answer_missing", {"question": text})
    if rule.members_include:
        kinds = {str(m.get("kind")) for m in given if isinstance(m, Mapping)} if isinstance(given, list) else set()
        missing = [k for k in rule.members_include if k not in kinds]
        values = {"question": text, "missing": missing, "required": list(rule.members_include)}
        return Reason("eligibility.answer_members", values, ("missing", "required"))
    shown = given if isinstance(given, (bool, str, int)) else str(given)
    return Reason(
        "eligibility.answer_equals",
        {"question": text, "answer": shown, "expected": rule.equals},
        ("answer", "expected"),
    )


def render(reasons: Reason | Iterable[Reason], language: str) -> str:
    """The reasons as one line in `language` (ko when it is neither)."""
    items = [reasons] if isinstance(reasons, Reason) else list(reasons)
    lang = language if language in LANGUAGES else "ko"
    return SEPARATOR[lang].join(r.text(lang) for r in items)


def lines(reasons: Iterable[Reason], language: str) -> list[str]:
    """Each reason as its own line in `language` (ko when it is neither): a notice's explanation."""
    lang = language if language in LANGUAGES else "ko"
    return [r.text(lang) for r in reasons]


def tie_break_name(name: str, criteria: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """A tie-break ("written", "criterion:feasibility", ...) as a notice names it, in each language;
    `criteria` gives each criterion's names ({"feasibility": {"ko": ..., "en": ...}})."""
    if name.startswith("criterion:"):
        key = name.removeprefix("criterion:")
        names = criteria.get(key, {})
        return {lang: TIE_BREAKS["criterion"][lang].format(name=names.get(lang, key)) for lang in LANGUAGES}
    return dict(TIE_BREAKS.get(name, {lang: name for lang in LANGUAGES}))


def is_reason(value: Any) -> bool:
    """A catalogue reason (or a non-empty list of them), as opposed to free text."""
    if isinstance(value, Reason):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, Reason) for v in value)


def _show(value: Any, language: str, named: bool) -> str:
    if isinstance(value, Mapping):  # a text given in each language (a question's text)
        return str(value.get(language, value.get("ko", "")))
    if named:
        names = NAMES[language]
        if isinstance(value, (list, tuple, set, frozenset)):
            joiner = ", "
            return joiner.join(names.get(str(v), str(v)) for v in value)
        return names.get(str(value), str(value))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def check() -> list[str]:
    """Problems of the catalogue: a language missing, or placeholders that differ."""
    problems = []
    for code, texts in CATALOGUE.items():
        missing = [lang for lang in LANGUAGES if not texts.get(lang)]
        if missing:
            problems.append(f"reason {code}: no {', '.join(missing)} text")
            continue
        fields = {lang: {f for _, f, _, _ in string.Formatter().parse(texts[lang]) if f} for lang in LANGUAGES}
        if fields["ko"] != fields["en"]:
            problems.append(f"reason {code}: ko names {sorted(fields['ko'])}, en names {sorted(fields['en'])}")
    for name, texts in TIE_BREAKS.items():
        if set(texts) != set(LANGUAGES):
            problems.append(f"tie-break {name}: not named in each of {', '.join(LANGUAGES)}")
    for lang in LANGUAGES:
        if NAMES[lang].keys() != NAMES["ko"].keys():
            problems.append(f"names: {lang} does not name the same values as ko")
    return problems


_PROBLEMS = check()
if _PROBLEMS:  # a catalogue edit that breaks it fails at start, not in a letter
    raise RuntimeError("notifications/reasons.py: " + "; ".join(_PROBLEMS))
