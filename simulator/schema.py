"""GraphQL schema of the simulated supplier API and its resolvers.

Resolvers find the running service in `info.context["service"]`. A field that
needs a login raises an error with `extensions.code` UNAUTHENTICATED unless the
request carries a valid bearer token or sits inside `as(token: ...)`.
"""

import logging

from graphql import GraphQLError, GraphQLSchema, build_schema

from simulator.catalogue import CatalogueError
from simulator.filters import QueryError
from simulator.projection import compile_plan, project

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 50

SCHEMA_SDL = """
type Query {
  authenticate: Authenticate
  diamonds_by_query(
    query: DiamondQuery!, offset: Int, limit: Int, order: DiamondOrder
  ): DiamondsResult
  diamonds_by_query_count(query: DiamondQuery!): Int
  as(token: String!): Query
}

type Mutation {
  create_hold(ProductId: ID!, ProductType: String!): Hold
  cancel_hold(hold_id: ID!): Hold
  create_order(items: [OrderItemInput!]!): String
  as(token: String!): Mutation
}

type Authenticate {
  username_and_password(username: String!, password: String!): AuthToken
}

type AuthToken {
  token: String!
  expires: String
}

input NumberRange {
  from: Float
  to: Float
}

input DateTimeRange {
  from: String
  to: String
}

input DiamondQuery {
  shapes: [String]
  sizes: [NumberRange]
  labgrown: Boolean
  dollar_value: NumberRange
  dollar_per_carat: NumberRange
  has_image: Boolean
  has_v360: Boolean
  availability: [String]
  excludeFairPoorCuts: Boolean
  hide_memo: Boolean
  updated: DateTimeRange
  color: [String]
  clarity: [String]
  cut: [String]
  lab: [String]
}

enum DiamondOrderType {
  createdAt
  price
  price_per_carat
  size
  color
  clarity
  cut
  discount
}

enum OrderDirection {
  ASC
  DESC
}

input DiamondOrder {
  type: DiamondOrderType!
  direction: OrderDirection
}

input OrderItemInput {
  offerId: ID!
  destinationId: ID
  customer_order_number: String
  customer_comment: String
  return_option: Boolean
}

type DiamondsResult {
  items: [Item!]!
  total_count: Int!
}

type Item {
  id: ID!
  price: Int
  discount: Float
  markup_price: Int
  diamond_price: Int
  createdAt: String
  updatedAt: String
  diamond: Diamond
}

type Diamond {
  id: ID!
  availability: String
  HoldId: ID
  image: String
  video: String
  supplier_video_link: String
  supplierStockId: String
  NivodaStockId: String
  eyeClean: Boolean
  brown: String
  green: String
  milky: String
  mine_of_origin: String
  v360: V360
  delivery_time: DeliveryTime
  supplier: Supplier
  certificate: Certificate
}

type V360 {
  url: String
}

type DeliveryTime {
  min_business_days: Int
  max_business_days: Int
}

type Supplier {
  id: ID
  name: String
  legal_name: String
}

type Certificate {
  id: ID
  lab: String
  certNumber: String
  pdfUrl: String
  shape: String
  carats: Float
  color: String
  clarity: String
  cut: String
  polish: String
  symmetry: String
  floInt: String
  floCol: String
  length: Float
  width: Float
  depth: Float
  depthPercentage: Float
  table: Float
  crownAngle: Float
  crownHeight: Float
  pavAngle: Float
  pavDepth: Float
  girdle: String
  culetSize: String
  labgrown: Boolean
  treated: Boolean
  f_color: String
  f_intensity: String
  f_overtone: String
}

type Hold {
  id: ID
  denied: Boolean
  until: String
}
"""


PAGE_RESULT_TYPE = "): DiamondsResult"


def build_supplier_schema() -> GraphQLSchema:
    """Build the public schema, used to validate requests."""
    return build_schema(SCHEMA_SDL)


def build_execution_schema() -> GraphQLSchema:
    """Build the schema that executes requests, with resolvers attached.

    It differs from the public schema in one place: `diamonds_by_query`
    returns an opaque JSON scalar, whose value the resolver projects onto the
    request's selection (see `simulator.projection`).
    """
    if SCHEMA_SDL.count(PAGE_RESULT_TYPE) != 1:
        raise RuntimeError(
            "schema text changed: diamonds_by_query result type not found"
        )
    sdl = SCHEMA_SDL.replace(PAGE_RESULT_TYPE, "): PageJSON") + "\nscalar PageJSON\n"
    schema = build_schema(sdl)
    query_fields = schema.query_type.fields
    query_fields["authenticate"].resolve = _resolve_authenticate
    query_fields["diamonds_by_query"].resolve = _resolve_diamonds_by_query
    query_fields["diamonds_by_query_count"].resolve = _resolve_count
    query_fields["as"].resolve = _resolve_as

    mutation_fields = schema.mutation_type.fields
    mutation_fields["create_hold"].resolve = _resolve_create_hold
    mutation_fields["cancel_hold"].resolve = _resolve_cancel_hold
    mutation_fields["create_order"].resolve = _resolve_create_order
    mutation_fields["as"].resolve = _resolve_as

    login_field = schema.get_type("Authenticate").fields["username_and_password"]
    login_field.resolve = _resolve_username_and_password
    return schema


def unauthenticated_error(reason: str) -> GraphQLError:
    """Build the error returned for a missing, unknown or expired token."""
    return GraphQLError(
        f"{reason}; log in with authenticate.username_and_password and send "
        "'Authorization: Bearer <token>'",
        extensions={"code": "UNAUTHENTICATED"},
    )


def bad_input_error(message: str) -> GraphQLError:
    """Build the error returned for an invalid argument."""
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


def _require_login(parent, info) -> None:
    if isinstance(parent, dict) and parent.get("token_valid"):
        return
    reason = info.context["token_problem"]
    if reason is not None:
        raise unauthenticated_error(reason)


def _resolve_as(parent, info, token):
    # Nested fields see the wrapper's token instead of the header.
    if not info.context["service"].tokens.is_valid(token):
        raise unauthenticated_error("the token of as(token:) is unknown or expired")
    return {"token_valid": True}


def _resolve_authenticate(parent, info):
    return {}


def _resolve_username_and_password(parent, info, username, password):
    service = info.context["service"]
    if not service.check_credentials(username, password):
        raise GraphQLError(
            f"login failed for user {username!r}: wrong username or password",
            extensions={"code": "UNAUTHENTICATED"},
        )
    return service.tokens.issue()


def _resolve_count(parent, info, query):
    _require_login(parent, info)
    try:
        return info.context["service"].catalogue.count(query)
    except QueryError as error:
        raise bad_input_error(str(error)) from None


def _resolve_diamonds_by_query(
    parent, info, query, offset=None, limit=None, order=None
):
    _require_login(parent, info)
    offset = 0 if offset is None else offset
    limit = MAX_PAGE_SIZE if limit is None else limit
    if limit > MAX_PAGE_SIZE or limit < 1:
        raise bad_input_error(f"limit {limit} is invalid; use 1 to {MAX_PAGE_SIZE}")
    if offset < 0:
        raise bad_input_error(f"offset {offset} is invalid; use 0 or more")
    service = info.context["service"]
    try:
        page = service.serve_page(info.context, query, offset, limit, order)
    except QueryError as error:
        raise bad_input_error(str(error)) from None

    plan = compile_plan(
        service.schema,
        service.schema.get_type("DiamondsResult"),
        [node.selection_set for node in info.field_nodes if node.selection_set],
        info.fragments,
        info.variable_values,
    )
    return project(page, plan)


def _resolve_create_hold(parent, info, ProductId, ProductType):  # noqa: N803
    _require_login(parent, info)
    if ProductType.lower() != "diamond":
        raise bad_input_error(f"ProductType {ProductType!r} is invalid; use Diamond")
    return _call_catalogue(info.context["service"].catalogue.create_hold, ProductId)


def _resolve_cancel_hold(parent, info, hold_id):
    _require_login(parent, info)
    return _call_catalogue(info.context["service"].catalogue.cancel_hold, hold_id)


def _resolve_create_order(parent, info, items):
    _require_login(parent, info)
    offer_ids = [item["offerId"] for item in items]
    if not offer_ids:
        raise bad_input_error("create_order needs at least one item")
    return _call_catalogue(info.context["service"].catalogue.create_order, offer_ids)


def _call_catalogue(method, argument):
    try:
        return method(argument)
    except CatalogueError as error:
        logger.warning("Mutation rejected: %s", error)
        raise bad_input_error(str(error)) from None
