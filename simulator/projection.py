"""Fast projection of page results onto a validated GraphQL selection.

graphql-core resolves every field of every item through its generic executor,
which took about 25 ms for a page of 50 full items (graphql-core 3.3.2 on a
2-core machine). So the simulator validates each document against the full
schema but executes `diamonds_by_query` as an opaque JSON scalar, whose value
is built here. The selection set is compiled once per request into a plan,
and the plan copies the selected keys of each item dict. Aliases, fragments,
`@skip`/`@include` and `__typename` are handled as the GraphQL
specification's field collection does.
"""

from dataclasses import dataclass

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_directive_values,
    get_named_type,
)
from graphql.type import GraphQLIncludeDirective, GraphQLSkipDirective


@dataclass(frozen=True)
class FieldPlan:
    """One response key: the source field and the plan of its sub-selection."""

    response_key: str
    field_name: str
    children: "Plan | None"
    type_name: str


@dataclass(frozen=True)
class Plan:
    """The fields selected on one object type."""

    fields: tuple[FieldPlan, ...]
    # Field names in selection order, and whether each response key is its
    # field name: then a dict with exactly these keys in this order is already
    # its own projection, apart from its nested objects.
    names: tuple[str, ...]
    verbatim: bool
    nested: tuple[FieldPlan, ...]


def _make_plan(fields: list[FieldPlan]) -> Plan:
    verbatim = all(
        field.response_key == field.field_name and field.field_name != "__typename"
        for field in fields
    )
    return Plan(
        fields=tuple(fields),
        names=tuple(field.field_name for field in fields),
        verbatim=verbatim,
        nested=tuple(field for field in fields if field.children is not None),
    )


def compile_plan(
    schema: GraphQLSchema,
    parent_type: GraphQLObjectType,
    selection_sets: list[SelectionSetNode],
    fragments: dict,
    variables: dict,
) -> Plan:
    """Compile merged selection sets on `parent_type` into a projection plan."""
    grouped: dict[str, list[FieldNode]] = {}
    for selection_set in selection_sets:
        _collect_fields(selection_set, fragments, variables, grouped, set())

    plans = []
    for response_key, nodes in grouped.items():
        field_name = nodes[0].name.value
        if field_name == "__typename":
            plans.append(FieldPlan(response_key, field_name, None, parent_type.name))
            continue
        field_type = get_named_type(parent_type.fields[field_name].type)
        children = None
        if isinstance(field_type, GraphQLObjectType):
            child_sets = [node.selection_set for node in nodes if node.selection_set]
            children = compile_plan(
                schema, field_type, child_sets, fragments, variables
            )
        plans.append(FieldPlan(response_key, field_name, children, parent_type.name))
    return _make_plan(plans)


def project(value, plan: Plan):
    """Project a dict, or each dict of a list, onto `plan`.

    Dicts are changed in place where their keys already match the plan, so
    pass values built for this response only.
    """
    if value is None:
        return None
    if isinstance(value, list):
        return [project(element, plan) for element in value]

    if plan.verbatim and tuple(value) == plan.names:
        for field in plan.nested:
            name = field.field_name
            value[name] = project(value[name], field.children)
        return value

    result = {}
    for field in plan.fields:
        if field.field_name == "__typename":
            result[field.response_key] = field.type_name
        elif field.children is None:
            result[field.response_key] = value.get(field.field_name)
        else:
            result[field.response_key] = project(
                value.get(field.field_name), field.children
            )
    return result


def _collect_fields(
    selection_set: SelectionSetNode,
    fragments: dict,
    variables: dict,
    grouped: dict[str, list[FieldNode]],
    visited_fragments: set[str],
) -> None:
    for selection in selection_set.selections:
        if not _is_included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            grouped.setdefault(key, []).append(selection)
        elif isinstance(selection, InlineFragmentNode):
            _collect_fields(
                selection.selection_set,
                fragments,
                variables,
                grouped,
                visited_fragments,
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in visited_fragments or name not in fragments:
                continue
            visited_fragments.add(name)
            _collect_fields(
                fragments[name].selection_set,
                fragments,
                variables,
                grouped,
                visited_fragments,
            )


def _is_included(node, variables: dict) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip is not None and skip["if"] is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include is not None and include["if"] is False)
