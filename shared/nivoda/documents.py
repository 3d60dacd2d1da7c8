"""GraphQL documents sent to Nivoda, parsed once at import by gql."""

from __future__ import annotations

from gql import gql

CERTIFICATE_FIELDS = """
    id lab certNumber pdfUrl shape carats color clarity cut polish symmetry
    floInt floCol length width depth depthPercentage table crownAngle
    crownHeight pavAngle pavDepth girdle culetSize labgrown treated f_color
    f_intensity f_overtone
"""

ITEM_FIELDS = f"""
    id price discount markup_price diamond_price createdAt updatedAt
    diamond {{
        id availability HoldId image video supplier_video_link supplierStockId
        NivodaStockId eyeClean brown green milky mine_of_origin
        v360 {{ url }}
        delivery_time {{ min_business_days max_business_days }}
        supplier {{ id name legal_name }}
        certificate {{ {CERTIFICATE_FIELDS} }}
    }}
"""

LOGIN = gql(
    """
    query Login($username: String!, $password: String!) {
        authenticate {
            username_and_password(username: $username, password: $password) {
                token
            }
        }
    }
    """
)

SEARCH = gql(
    f"""
    query Search(
        $query: DiamondQuery!, $offset: Int, $limit: Int, $order: DiamondOrder
    ) {{
        diamonds_by_query(
            query: $query, offset: $offset, limit: $limit, order: $order
        ) {{
            total_count
            items {{ {ITEM_FIELDS} }}
        }}
    }}
    """
)

COUNT = gql(
    """
    query Count($query: DiamondQuery!) {
        diamonds_by_query_count(query: $query)
    }
    """
)

CREATE_HOLD = gql(
    """
    mutation CreateHold($productId: ID!, $productType: String!) {
        create_hold(ProductId: $productId, ProductType: $productType) {
            id denied until
        }
    }
    """
)

CANCEL_HOLD = gql(
    """
    mutation CancelHold($holdId: ID!) {
        cancel_hold(hold_id: $holdId) {
            id denied until
        }
    }
    """
)

CREATE_ORDER = gql(
    """
    mutation CreateOrder($items: [OrderItemInput!]!) {
        create_order(items: $items)
    }
    """
)
