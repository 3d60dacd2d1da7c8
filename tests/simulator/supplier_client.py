"""GraphQL client and queries that the simulator tests share."""

import httpx

from simulator import Simulator

LOGIN = """
query Login($username: String!, $password: String!) {
  authenticate {
    username_and_password(username: $username, password: $password) { token }
  }
}
"""
COUNT = "query Count($query: DiamondQuery!) { diamonds_by_query_count(query: $query) }"
PAGE = """
query Page($query: DiamondQuery!, $offset: Int, $limit: Int, $order: DiamondOrder) {
  diamonds_by_query(query: $query, offset: $offset, limit: $limit, order: $order) {
    total_count
    items {
      id price discount markup_price diamond_price createdAt updatedAt
      diamond {
        id availability HoldId image video supplier_video_link supplierStockId
        NivodaStockId eyeClean brown green milky mine_of_origin
        v360 { url }
        delivery_time { min_business_days max_business_days }
        supplier { id name legal_name }
        certificate {
          id lab certNumber pdfUrl shape carats color clarity cut polish symmetry
          floInt floCol length width depth depthPercentage table crownAngle
          crownHeight pavAngle pavDepth girdle culetSize labgrown treated
          f_color f_intensity f_overtone
        }
      }
    }
  }
}
"""
CREATED_ASC = {"type": "createdAt", "direction": "ASC"}
FULL_WINDOW = {
    "updated": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
}


class SupplierClient:
    """Small GraphQL client for the simulator, as a pipeline would call it."""

    def __init__(self, simulator: Simulator, http: httpx.Client) -> None:
        self.simulator = simulator
        self.http = http
        self.token: str | None = None

    def post(
        self, query: str, variables: dict | None = None, token: str | None = "login"
    ):
        headers = {}
        if token == "login":
            token = self.token or self.login()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = {"query": query, "variables": variables or {}}
        return self.http.post(self.simulator.url, json=body, headers=headers)

    def login(self, username: str = "demo", password: str = "demo") -> str:
        response = self.post(LOGIN, {"username": username, "password": password}, None)
        self.token = response.json()["data"]["authenticate"]["username_and_password"][
            "token"
        ]
        return self.token

    def data(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables).json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def count(self, query: dict) -> int:
        return self.data(COUNT, {"query": query})["diamonds_by_query_count"]

    def page(
        self, query: dict, offset: int, limit: int = 50, order=CREATED_ASC
    ) -> dict:
        variables = {"query": query, "offset": offset, "limit": limit, "order": order}
        return self.data(PAGE, variables)["diamonds_by_query"]

    def all_items(self, query: dict) -> list[dict]:
        count = self.count(query)
        items = []
        for offset in range(0, count, 50):
            items.extend(self.page(query, offset)["items"])
        return items

    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.http.request(method, f"{self.simulator.admin_url}{path}", **kwargs)
